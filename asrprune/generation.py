"""The reference decoder path, `model.generate`, and Whisper's language handling around it: detect each
utterance's language (as `generate` does), the per-row prompts, the language a prompt decodes in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from asrprune.settings import DecodeSettings


def generate_tokens(
    model: Any,
    prompt_ids: list[int] | list[list[int]],
    limits: list[int],
    settings: DecodeSettings,
    *,
    features: torch.Tensor | None = None,
    encoder_hidden: torch.Tensor | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> list[list[int]]:
    """The reference: `model.generate` on features (or on given encoder outputs), cut at each limit."""
    inputs: dict[str, Any]
    if features is not None:
        inputs = {"input_features": features}
    else:
        from transformers.modeling_outputs import BaseModelOutput

        inputs = {"encoder_outputs": BaseModelOutput(last_hidden_state=encoder_hidden)}
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=max(limits),
            return_dict_in_generate=True,  # then `sequences` starts with the prompt
            num_beams=settings.num_beams,
            do_sample=False,
            return_timestamps=False,
            **(generate_kwargs or {}),
        )
    sequences = out.sequences
    n = sequences.shape[0]
    prompts = prompt_ids if prompt_ids and isinstance(prompt_ids[0], list) else [prompt_ids] * n
    width = len(prompts[0])
    if sequences[:, :width].tolist() != prompts:
        raise RuntimeError(f"generate did not start from the expected prompts {prompts[:2]}...: {sequences[:, :6].tolist()}")
    return [seq[:lim] for seq, lim in zip(sequences[:, width:].tolist(), limits)]


@torch.inference_mode()
def detect_languages(model: Any, encoder_hidden: torch.Tensor) -> list[int]:
    """Whisper's language detection, as `generate`'s `detect_language`: one decoder step from
    <|startoftranscript|>, the argmax over the language tokens. Returns a language token id per row."""
    gc = model.generation_config
    sot = torch.full((encoder_hidden.shape[0], 1), int(gc.decoder_start_token_id), dtype=torch.long, device=encoder_hidden.device)
    hidden = model.model.decoder(input_ids=sot, encoder_hidden_states=encoder_hidden, use_cache=False).last_hidden_state
    logits = model.proj_out(hidden[:, -1]).float()
    lang_ids = torch.tensor(sorted(gc.lang_to_id.values()), device=logits.device)
    return lang_ids[logits[:, lang_ids].argmax(-1)].tolist()


def auto_prompts(model: Any, lang_ids: list[int]) -> list[list[int]]:
    """<|sot|> <|lang|> <|transcribe|> <|notimestamps|> per row, with each row's detected language."""
    gc = model.generation_config
    return [[int(gc.decoder_start_token_id), lang, int(gc.task_to_id["transcribe"]), int(gc.no_timestamps_token_id)] for lang in lang_ids]


def prompt_language(model: Any, prompt: list[int]) -> str:
    """The language a prompt decodes in: its language token's code, `en` for English-only models."""
    by_id = {int(v): k.strip("<|>") for k, v in (getattr(model.generation_config, "lang_to_id", None) or {}).items()}
    return next((by_id[t] for t in prompt if t in by_id), "en")
