"""Input activation norms ‖X_j‖₂ of Linear and Conv1d layers on calibration batches (for `wanda`).

Norms run over every position the layer sees: all 1500 encoder frames of each window (Whisper
pads every utterance to 30 s, and the padded frames are what the model computes on), and the
decoder positions that hold a real token, i.e. the forced prompt and the transcript (teacher
forcing), not the padding after the end of a shorter transcript. Restricting the decoder to label
positions would drop only the first prompt tokens, so it is not worth a second mask.
Cross-attention keys and values read the encoder output, so they count all frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch
from torch import nn

from asrprune.batches import IGNORE_INDEX, Batch, iter_batches, select_utterances


def _valid_decoder_positions(batch: Batch) -> torch.Tensor | None:
    """[B, T] bool: decoder inputs up to each row's last label (None: every position counts)."""
    if batch.labels is None:
        return None
    labelled = batch.labels != IGNORE_INDEX
    positions = torch.arange(labelled.shape[1])
    last = torch.where(labelled, positions, torch.full_like(positions, -1)).max(dim=1).values
    return positions.unsqueeze(0) <= last.unsqueeze(1)


def _reads_decoder_tokens(name: str) -> bool:
    """Whether a module's input is per decoder token (and so padding-masked)."""
    if not name.startswith("model.decoder.") and not name.startswith("proj_out"):
        return False
    return ".encoder_attn.k_proj" not in name and ".encoder_attn.v_proj" not in name


def input_activation_norms(model: nn.Module, batches: Iterable[Batch], tensor_names: list[str]) -> dict[str, torch.Tensor]:
    """Per weight tensor name, the L2 norm of each input feature (conv: input channel) over all positions."""
    modules = {}
    for name in tensor_names:
        mod_name = name.removesuffix(".weight")
        module = model.get_submodule(mod_name)
        if not name.endswith(".weight") or not isinstance(module, (nn.Linear, nn.Conv1d)):
            raise ValueError(f"activation norms are defined for Linear and Conv1d weights; {name!r} is not one")
        modules[name] = module
    sums = {n: torch.zeros(m.weight.shape[1], dtype=torch.float64) for n, m in modules.items()}
    state: dict[str, torch.Tensor | None] = {"dec_mask": None}

    def make_hook(name: str, module: nn.Module):
        masked = _reads_decoder_tokens(name)

        def hook(mod, args, kwargs):
            x = (args[0] if args else kwargs["input"]).detach().double()
            if isinstance(module, nn.Conv1d):  # [B, C_in, T]
                sums[name] += (x**2).sum(dim=(0, 2)).cpu()
                return
            mask = state["dec_mask"]
            if masked and mask is not None and x.dim() == 3 and x.shape[:2] == mask.shape:
                x = x[mask.to(x.device)]
            sums[name] += (x.reshape(-1, x.shape[-1]) ** 2).sum(dim=0).cpu()

        return hook

    handles = [m.register_forward_pre_hook(make_hook(n, m), with_kwargs=True) for n, m in modules.items()]
    needs_decoder = any(n.startswith(("model.decoder.", "proj_out")) for n in tensor_names)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    try:
        with torch.no_grad():
            for batch in batches:
                feats = batch.input_features.to(device=device, dtype=dtype)
                if not needs_decoder:
                    model.model.encoder(feats)
                    continue
                if batch.decoder_input_ids is None:
                    raise ValueError("decoder activation norms need batches with decoder_input_ids (teacher forcing)")
                state["dec_mask"] = _valid_decoder_positions(batch)
                model(input_features=feats, decoder_input_ids=batch.decoder_input_ids.to(device))
    finally:
        for h in handles:
            h.remove()
    return {n: s.sqrt().float() for n, s in sums.items()}


def calibration_norms(
    model: nn.Module,
    processor: Any,
    calibration: pd.DataFrame,
    tensor_names: list[str],
    *,
    n_utts: int,
    batch_size: int,
    seed: int,
    prompt_ids: list[int],
) -> dict[str, torch.Tensor]:
    """`input_activation_norms` over the calibration utterances: the seeded subset of `n_utts` that the
    sensitivity stage's Fisher uses too (asrprune.batches.select_utterances, `calibration.seed`),
    teacher-forced behind the decoder prompt `prompt_ids`."""
    df = select_utterances(calibration, n_utts, seed)
    batches = iter_batches(df, processor, batch_size, prompt_ids=prompt_ids, eos_id=model.config.eos_token_id)
    return input_activation_norms(model, batches, tensor_names)
