"""`decoding.language: auto` (the authors' protocol): per-utterance language detection, then transcription.

A random multilingual tiny Whisper (unit tests only) checks that our detection is transformers'
`detect_language`, and that the fast loop with each row's detected prompt gives `generate`'s tokens.
"""

from __future__ import annotations

import pytest
import torch

from asrprune.settings import DecodeSettings
from asrprune.encoder import encode
from asrprune.generation import auto_prompts, detect_languages, generate_tokens, prompt_language
from asrprune.greedy import greedy_decode
from conftest import make_tiny_whisper
from test_decode import EOS, NO_TS, SOT, VOCAB, random_model

LANGS = {"<|en|>": 60, "<|de|>": 61, "<|fr|>": 62, "<|es|>": 63}
TASKS = {"transcribe": 70, "translate": 71}


def multilingual_model(seed: int):
    """test_decode's lively random model (outputs depend on the audio) with a multilingual generation config."""
    from transformers import GenerationConfig

    model = random_model(seed, lively=True)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT, eos_token_id=EOS, pad_token_id=EOS, bos_token_id=EOS,
        no_timestamps_token_id=NO_TS, is_multilingual=True, lang_to_id=dict(LANGS), task_to_id=dict(TASKS),
        max_length=model.config.max_target_positions, suppress_tokens=[], begin_suppress_tokens=[],
        return_timestamps=False, language=None, task=None, forced_decoder_ids=None,
    )
    with torch.no_grad():  # spread the language logits so that rows detect different languages
        model.model.decoder.embed_tokens.weight[list(LANGS.values())] *= 20
    return model


def features(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 80, 3000, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_detection_is_transformers_detect_language(seed):
    from transformers.modeling_outputs import BaseModelOutput

    model = multilingual_model(seed)
    feats = features(6, seed)
    with torch.inference_mode():
        hidden = encode(model, feats)
        ours = detect_languages(model, hidden)
        theirs = model.detect_language(encoder_outputs=BaseModelOutput(last_hidden_state=hidden)).tolist()
    assert ours == theirs
    assert set(ours) <= set(LANGS.values())


def test_auto_prompts_decode_as_generate_does_and_name_their_language():
    found_mixed = False
    for seed in range(8):
        model = multilingual_model(seed)
        feats = features(6, 100 + seed)
        limits = [10, 4, 10, 7, 10, 2]
        with torch.inference_mode():
            hidden = encode(model, feats)
            prompts = auto_prompts(model, detect_languages(model, hidden))
            fast = greedy_decode(model, hidden, prompts, limits)
            codes = [prompt_language(model, p) for p in prompts]
            ref = generate_tokens(model, prompts, limits, DecodeSettings(), encoder_hidden=hidden,
                                  generate_kwargs={"language": codes, "task": "transcribe"})
        ref = [r[: r.index(EOS) + 1] if EOS in r else r for r in ref]
        assert fast == ref, seed
        assert all(p[0] == SOT and p[2:] == [TASKS["transcribe"], NO_TS] for p in prompts)
        found_mixed |= len(set(codes)) > 1
    assert found_mixed, "no batch mixed languages: the per-row prompt path was not exercised"


def test_prompt_language_of_forced_and_english_only_prompts():
    model = multilingual_model(0)
    assert prompt_language(model, [SOT, LANGS["<|de|>"], TASKS["transcribe"], NO_TS]) == "de"
    english_only = make_tiny_whisper(seed=0, vocab_size=VOCAB)
    assert prompt_language(english_only, [SOT, NO_TS]) == "en"


def test_unknown_language_setting_is_named():
    with pytest.raises(ValueError, match=r"decoding.language = 'fr'.*'en', 'auto'"):
        DecodeSettings(language="fr")
