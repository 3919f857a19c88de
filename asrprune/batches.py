"""From a dataset frame (asrprune.io.read_split) to model-ready batches: log-Mel features, decoder inputs and labels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

IGNORE_INDEX = -100


@dataclass
class Batch:
    """One batch of utterances; `labels` is IGNORE_INDEX wherever a position must not enter the loss."""

    ids: list[str]
    texts: list[str]
    durations: list[float]
    input_features: torch.Tensor  # [B, n_mels, 3000]
    decoder_input_ids: torch.Tensor | None = None  # [B, T]
    labels: torch.Tensor | None = None  # [B, T]


def select_utterances(df: pd.DataFrame, n_utts: int, seed: int) -> pd.DataFrame:
    """The calibration utterances: a seeded random subset of n_utts rows (all rows when fewer), in id order.

    The one place calibration utterances are picked: the Fisher and gradient scores
    (asrprune.sensitivity) and wanda's activation norms (asrprune.activations) read the same ones.
    """
    if n_utts >= len(df):
        return df.sort_values("id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(df), size=n_utts, replace=False))
    return df.iloc[pick].sort_values("id", kind="stable").reset_index(drop=True)


def log_mel(feature_extractor, audios: list[np.ndarray]) -> torch.Tensor:
    """Whisper's 30 s log-Mel features for a list of 16 kHz mono float arrays."""
    out = feature_extractor(audios, sampling_rate=16000, return_tensors="pt")
    return out.input_features


def encode_targets(
    tokenizer, texts: list[str], prompt_ids: list[int], eos_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing inputs and labels for `prompt + text + eos`.

    The decoder reads `prompt + text` and predicts `text + eos`: the forced prompt
    (start-of-transcript, language, task, no-timestamps) is never a label, because at decoding
    time those tokens are given, not predicted; padding is never a label either.
    """
    seqs = [prompt_ids + tokenizer.encode(" " + t.strip(), add_special_tokens=False) + [eos_id] for t in texts]
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(seqs), width), eos_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    n_prompt = len(prompt_ids)
    for i, s in enumerate(seqs):
        inputs[i, : len(s) - 1] = torch.tensor(s[:-1])
        labels[i, n_prompt - 1 : len(s) - 1] = torch.tensor(s[n_prompt:])
    return inputs, labels


# The order of decoding and calibration batches: longest first (fewer padded decoder steps, OOM
# early), ties by id. Part of the encoder-cache key (asrprune.encoder_states): batches must be
# reproduced exactly.
BATCH_ORDER = "duration desc, id asc"


def batch_chunks(df: pd.DataFrame, batch_size: int, sort_by_length: bool = True) -> list[pd.DataFrame]:
    """The rows of each batch: in BATCH_ORDER when sorting, else in `df`'s order."""
    rows = df.sort_values(["duration_s", "id"], ascending=[False, True], kind="stable") if sort_by_length else df
    return [rows.iloc[s : s + batch_size] for s in range(0, len(rows), batch_size)]


def chunk_features(chunk: pd.DataFrame, processor) -> torch.Tensor:
    """Log-Mel features of one batch's rows."""
    from asrprune.audio import decode_audio

    audios = [decode_audio(a, name=i) for a, i in zip(chunk["audio"], chunk["id"])]
    return log_mel(processor.feature_extractor, audios)


def iter_batches(
    df: pd.DataFrame,
    processor,
    batch_size: int,
    *,
    prompt_ids: list[int] | None = None,
    eos_id: int | None = None,
    sort_by_length: bool = True,
) -> Iterator[Batch]:
    """Yield batches of `df` (`batch_chunks`: longest first when sorting).

    With `prompt_ids` and `eos_id` the batches carry decoder inputs and labels for a loss.
    """
    for chunk in batch_chunks(df, batch_size, sort_by_length):
        batch = Batch(
            ids=list(chunk["id"]),
            texts=list(chunk["text"]),
            durations=[float(d) for d in chunk["duration_s"]],
            input_features=chunk_features(chunk, processor),
        )
        if prompt_ids is not None:
            if eos_id is None:
                raise ValueError("encode_targets needs eos_id together with prompt_ids")
            batch.decoder_input_ids, batch.labels = encode_targets(
                processor.tokenizer, batch.texts, prompt_ids, eos_id
            )
        yield batch
