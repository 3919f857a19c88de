"""The labels a sensitivity gradient is taken against, one utterance at a time.

The reference transcript as given (`fisher_mode="empirical"`, `label_source="reference"`), the
model's own greedy transcript (`label_source="greedy"`), or a transcript sampled ancestrally from the
model (`fisher_mode="true"`, seeded per utterance); always teacher-forced on the forced prompt, and
trimmed to the utterance's last label so that padding never enters (asrprune.sensitivity).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from asrprune.batches import IGNORE_INDEX, Batch
from asrprune.settings import DecodeSettings, token_limit


def eos_ids(model: nn.Module) -> set[int]:
    """End-of-transcript id(s), from the generation config when it has them."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = model.config.eos_token_id
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def check_labels(model: nn.Module, batch: Batch) -> None:
    """Refuse labels that are not the decoder inputs shifted left (start-of-transcript as a label)."""
    if batch.decoder_input_ids is None or batch.labels is None:
        raise ValueError("sensitivity needs batches with decoder_input_ids and labels (iter_batches with prompt_ids)")
    if batch.labels.shape != batch.decoder_input_ids.shape:
        raise ValueError(f"labels {tuple(batch.labels.shape)} and decoder inputs {tuple(batch.decoder_input_ids.shape)} differ in shape")
    sot = model.config.decoder_start_token_id
    if (batch.labels == sot).any():
        raise ValueError(
            f"labels contain the start-of-transcript token {sot}: labels must be the decoder inputs shifted "
            "left, with the forced prompt set to IGNORE_INDEX (see asrprune.batches.encode_targets)"
        )
    if ((batch.labels != IGNORE_INDEX).sum(1) == 0).any():
        raise ValueError("an utterance has no label position; it cannot contribute a gradient")


def _label_span(labels: torch.Tensor) -> tuple[int, int]:
    """First and one-past-last label position of one row."""
    pos = torch.nonzero(labels != IGNORE_INDEX).flatten()
    return int(pos[0]), int(pos[-1]) + 1


@torch.no_grad()
def generate_labels(
    model: nn.Module,
    encoder_hidden: torch.Tensor,
    prefix: torch.Tensor,
    max_tokens: int,
    *,
    generator: torch.Generator | None,
) -> list[int]:
    """Continue `prefix` (1-D forced prompt) for one utterance: sampled with `generator`, greedy without.

    Stops after an end-of-transcript token (kept) or after `max_tokens` tokens. Sampling is from the
    full softmax (no token suppression): the true Fisher is over the model's own distribution.
    """
    eos = eos_ids(model)
    out = model(encoder_outputs=(encoder_hidden,), decoder_input_ids=prefix[None], use_cache=True)
    cache, tokens = out.cache, []
    logits = out.logits[0, -1]
    with _one_cpu_thread():
        for _ in range(max_tokens):
            if generator is None:
                tok = int(torch.argmax(logits))
            else:
                probs = torch.softmax(logits.double(), dim=-1).cpu()
                tok = int(torch.multinomial(probs, 1, generator=generator))
            tokens.append(tok)
            if tok in eos or len(tokens) == max_tokens:
                break
            step = torch.tensor([[tok]], dtype=prefix.dtype, device=prefix.device)
            out = model(encoder_outputs=(encoder_hidden,), decoder_input_ids=step, cache=cache, use_cache=True)
            cache, logits = out.cache, out.logits[0, -1]
    return tokens


@contextlib.contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Run one-token decoder steps on one intra-op thread.

    Their ops are tiny, and on a loaded machine every multi-threaded op waits for a descheduled
    worker: measured ~10 ms per op with 2 threads on 2 busy cores, 0.1-0.5 s per token.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _greedy_limit(model: nn.Module, duration_s: float, n_prompt: int) -> int:
    """Token budget for greedy pseudo-labels: the decode stage's duration-scaled limit."""
    return token_limit(duration_s, DecodeSettings(), model.config.max_target_positions - n_prompt)


def utterance_targets(
    model: nn.Module,
    decoder_input_ids: torch.Tensor,
    labels: torch.Tensor,
    encoder_hidden: torch.Tensor | None,
    *,
    fisher_mode: str,
    label_source: str,
    duration_s: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One utterance's (decoder inputs, labels), trimmed to its last label: padding never enters.

    Reference labels are used as given; greedy and true-Fisher labels replace the text after the
    forced prompt, teacher-forced on the generated prefix.
    """
    start, end = _label_span(labels)
    if fisher_mode == "empirical" and label_source == "reference":
        return decoder_input_ids[:end], labels[:end]
    prefix = decoder_input_ids[: start + 1]
    if label_source == "greedy":
        budget = _greedy_limit(model, duration_s, start + 1)
        tokens = generate_labels(model, encoder_hidden, prefix, budget, generator=None)
        budget = len(tokens)
    else:
        budget = end - start  # the reference length caps the sampled transcript
    if fisher_mode == "true":
        tokens = generate_labels(model, encoder_hidden, prefix, budget, generator=generator)
    new = torch.tensor(tokens, dtype=labels.dtype, device=labels.device)
    inputs = torch.cat([prefix, new[:-1]])
    lab = torch.cat([torch.full((start,), IGNORE_INDEX, dtype=labels.dtype, device=labels.device), new])
    return inputs, lab
