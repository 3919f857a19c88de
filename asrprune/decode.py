"""Batched greedy (or beam) decoding of a dataset with one model variant, one row per utterance."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from asrprune.batches import iter_batches

log = logging.getLogger(__name__)

DECODE_COLUMNS = ["id", "reference", "hypothesis", "duration_s", "n_tokens", "token_limit", "hit_token_limit", "decode_s"]


@dataclass(frozen=True)
class DecodeSettings:
    """How hypotheses are produced; recorded with every table row."""

    batch_size: int = 8
    num_beams: int = 1
    device: str = "auto"
    gpu_dtype: str = "bfloat16"
    max_tokens_per_second: float = 6.0
    max_tokens_margin: int = 10

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "DecodeSettings":
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})


def resolve_device(setting: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; asking for CUDA without one is an error."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("decoding.device = 'cuda' but no CUDA device is visible: expected a GPU or device 'auto'/'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def token_limit(duration_s: float, settings: DecodeSettings, ceiling: int) -> int:
    """New-token budget that scales with the audio: speech runs at ~3-4 tokens/s, so a hypothesis
    far longer than that is a runaway loop, and stopping it early saves time without changing
    any hypothesis that ends normally."""
    return min(ceiling, math.ceil(duration_s * settings.max_tokens_per_second) + settings.max_tokens_margin)


def decode_frame(
    model,
    processor,
    prompt_ids: list[int],
    df: pd.DataFrame,
    settings: DecodeSettings,
    generate_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Decode every utterance of `df`; the result is sorted by id.

    Utterances run longest first in batches; each gets its own token limit (the batch generates up
    to the largest and longer hypotheses are cut at their own limit, which for greedy decoding is
    exactly what a per-utterance limit gives).
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    tokenizer = processor.tokenizer
    eos = model.generation_config.eos_token_id
    ceiling = model.config.max_target_positions - len(prompt_ids)
    rows = []
    bar = tqdm(total=len(df), desc="decode", unit="utt", mininterval=5)
    for batch in iter_batches(df, processor, settings.batch_size):
        limits = [token_limit(d, settings, ceiling) for d in batch.durations]
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                batch.input_features.to(device=device, dtype=dtype),
                max_new_tokens=max(limits),
                return_dict_in_generate=True,  # then `sequences` starts with the prompt
                num_beams=settings.num_beams,
                do_sample=False,
                return_timestamps=False,
                **(generate_kwargs or {}),
            )
        seconds = (time.perf_counter() - start) / len(batch.ids)
        sequences = out.sequences
        if sequences[:, : len(prompt_ids)].tolist() != [prompt_ids] * len(batch.ids):
            raise RuntimeError(f"generate did not start from the expected prompt {prompt_ids}: {sequences[:, :6].tolist()}")
        for i, seq in enumerate(sequences[:, len(prompt_ids) :].tolist()):
            new = seq[: limits[i]]
            ended = eos in new
            text_tokens = new[: new.index(eos)] if ended else new
            rows.append(
                {
                    "id": batch.ids[i],
                    "reference": batch.texts[i],
                    "hypothesis": tokenizer.decode(text_tokens, skip_special_tokens=True).strip(),
                    "duration_s": batch.durations[i],
                    "n_tokens": len(text_tokens),
                    "token_limit": limits[i],
                    "hit_token_limit": not ended,
                    "decode_s": seconds,
                }
            )
        bar.update(len(batch.ids))
    bar.close()
    return pd.DataFrame(rows, columns=DECODE_COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)
