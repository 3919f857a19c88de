"""Per-tensor sensitivity of a Whisper model on a calibration split: Taylor score and diagonal Fisher.

Definitions (u runs over the N calibration utterances, w is one weight):
- `loss_u` is the SUM of token cross-entropies over utterance u's label positions, i.e. the
  sequence negative log-likelihood -log p(y_u | x_u). The Fisher is the Fisher of the sequence
  distribution, so a long transcript weighs more than a short one, as it carries more evidence.
- `g_u = ∂loss_u/∂w`, computed exactly per utterance (never from a batch-mean gradient).
- per element: `fisher = (1/N) Σ_u g_u²` and `taylor = (1/N) Σ_u |w · g_u|`.
- per tensor: `fisher` = Σ over elements; `fisher_per_weight` = fisher / numel; `grad_score` =
  mean over elements of the per-element taylor (a per-weight average, so small and large tensors
  compare); `weight_l2` = ‖w‖₂.

Labels: `fisher_mode="empirical"` uses the batch's labels (the reference transcript, or the model's
greedy transcript with `label_source="greedy"`); `fisher_mode="true"` samples each utterance's labels
ancestrally from the model itself (teacher-forced on the sampled prefix, seeded per utterance), at
most as many tokens as the empirical labels have, stopping after end-of-transcript. The forced prompt
(start-of-transcript, language, task, no-timestamps) and padding are never labels (asrprune.labels).

Per-sample gradients: `method="loop"` runs one forward+backward per utterance, trimmed to its own
length; `method="vmap"` uses `torch.func` (functional_call + vmap(grad)) over chunks of utterances.
Both are exact. Measured with bench/bench_fisher.py on tiny.en (CPU time, 1 thread), the loop costs
1.05-1.15x a plain batched forward+backward over the same utterances: Whisper's 1500-frame encoder
already fills the cores at batch 1, so what the loop adds is squaring and accumulating 38M gradient
entries per utterance (~5 %). vmap costs 1.4-1.7x (no batching rule for CPU scaled-dot-product
attention, and all per-sample gradients of a chunk live at once); the loop is the default.

No file is read or written here: the sensitivity stage (asrprune.stages.sensitivity) loads the model
and the calibration split and writes the tables, the Fisher and the heatmap (asrprune.plots).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from asrprune.batches import IGNORE_INDEX, Batch
from asrprune.components import COMPONENTS, classify
from asrprune.labels import check_labels, eos_ids, utterance_targets

log = logging.getLogger(__name__)

FISHER_MODES = ("empirical", "true")
LABEL_SOURCES = ("reference", "greedy")
GRADIENT_BACKENDS = ("loop", "vmap")
TENSOR_COLUMNS = ["tensor", "component", "side", "layer", "numel", "grad_score", "fisher", "fisher_per_weight", "weight_l2"]
SCORES = ("grad_score", "fisher_per_weight")
_SIDE_ORDER = {"encoder": 100, "decoder": 101, "shared": 102}
# Seeds per utterance: seed * _SEED_STRIDE + ordinal, so a sample does not depend on batch layout.
_SEED_STRIDE = 1_000_003


@dataclass
class SensitivityResult:
    """Per-element statistics averaged over the calibration utterances, by parameter name (tied once)."""

    fisher: dict[str, torch.Tensor]  # mean_u g_u²
    taylor: dict[str, torch.Tensor]  # mean_u |w · g_u|
    n_utts: int
    n_label_tokens: int
    ids: list[str] = field(default_factory=list)
    fisher_mode: str = "empirical"
    label_source: str = "reference"
    method: str = "loop"


# --------------------------------------------------------------------------------------------
# Per-utterance gradients
# --------------------------------------------------------------------------------------------


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-row sum of token cross-entropies over label positions ([B, T, V], [B, T] -> [B])."""
    ce = nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return ce.sum(-1)


@contextlib.contextmanager
def _all_trainable(model: nn.Module) -> Iterator[dict[str, nn.Parameter]]:
    """Every parameter requires grad (frozen ones too, e.g. the sinusoidal encoder positions), eval mode."""
    params = dict(model.named_parameters())  # tied tensors once: proj_out.weight is embed_tokens.weight
    saved = {n: p.requires_grad for n, p in params.items()}
    was_training = model.training
    model.eval()  # dropout off: the Fisher of the deployed model
    try:
        for p in params.values():
            p.requires_grad_(True)
        yield params
    finally:
        for n, p in params.items():
            p.requires_grad_(saved[n])
        model.train(was_training)


def _generator(seed: int, ordinal: int) -> torch.Generator:
    """A CPU generator per utterance (sampling draws on the CPU, so GPU runs sample the same labels)."""
    return torch.Generator().manual_seed(seed * _SEED_STRIDE + ordinal)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch's tensors on the model's device (a shallow copy)."""
    return Batch(
        batch.ids, batch.texts, batch.durations, batch.input_features.to(device),
        batch.decoder_input_ids.to(device), batch.labels.to(device),
    )


class _Accumulator:
    """Running Σ_u g_u² and Σ_u |g_u| per parameter, in the parameters' dtype."""

    def __init__(self, params: dict[str, torch.Tensor]):
        self.sq = {n: torch.zeros_like(p, requires_grad=False) for n, p in params.items()}
        self.abs = {n: torch.zeros_like(p, requires_grad=False) for n, p in params.items()}

    def add(self, name: str, g: torch.Tensor) -> None:
        """Add one utterance's gradient (consumed: made absolute in place, saving a temporary per tensor)."""
        self.sq[name].addcmul_(g, g)
        self.abs[name].add_(g.abs_())

    def add_stack(self, name: str, gs: torch.Tensor) -> None:
        """Add per-utterance gradients stacked along dim 0."""
        self.sq[name].add_((gs * gs).sum(0))
        self.abs[name].add_(gs.abs().sum(0))


def _loop_step(
    model: nn.Module, params: dict[str, nn.Parameter], acc: _Accumulator, batch: Batch, i: int, targets_fn
) -> int:
    """Forward+backward of utterance i of the batch alone; returns its label count."""
    enc = model.model.encoder(batch.input_features[i : i + 1]).last_hidden_state
    inputs, labels = targets_fn(i, enc.detach())
    logits = model(encoder_outputs=(enc,), decoder_input_ids=inputs[None]).logits
    loss = sequence_nll(logits, labels[None]).sum()
    grads = torch.autograd.grad(loss, list(params.values()))
    for name, g in zip(params, grads):
        acc.add(name, g)
    return int((labels != IGNORE_INDEX).sum())


def _vmap_chunk(
    model: nn.Module,
    params: dict[str, nn.Parameter],
    acc: _Accumulator,
    batch: Batch,
    rows: list[int],
    targets_fn,
    model_labels: bool,
) -> int:
    """Per-sample gradients of a chunk of utterances with torch.func; returns the label count.

    Model-made labels (true Fisher, greedy) need the encoder output first: one extra no-grad
    encoder pass per chunk, which the loop method avoids by reusing its forward.
    """
    from torch.func import functional_call, grad, vmap

    pairs = []
    with torch.no_grad():
        enc = model.model.encoder(batch.input_features[rows]).last_hidden_state if model_labels else None
    for j, i in enumerate(rows):
        pairs.append(targets_fn(i, None if enc is None else enc[j : j + 1]))
    width = max(len(p[0]) for p in pairs)
    eos = min(eos_ids(model))
    inputs = torch.full((len(rows), width), eos, dtype=torch.long, device=batch.labels.device)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long, device=batch.labels.device)
    for j, (inp, lab) in enumerate(pairs):
        inputs[j, : len(inp)], labels[j, : len(lab)] = inp, lab
    detached = {n: p.detach() for n, p in params.items()}

    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, ids: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, p, (), {"input_features": x[None], "decoder_input_ids": ids[None]}).logits
        return sequence_nll(logits, lab[None]).sum()

    with warnings.catch_warnings():
        # CPU scaled-dot-product attention has no vmap batching rule: torch warns and loops (slow, exact)
        warnings.filterwarnings("ignore", message="There is a performance drop")
        grads = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))(detached, batch.input_features[rows], inputs, labels)
    for name in params:
        acc.add_stack(name, grads[name])
    return int((labels != IGNORE_INDEX).sum())


def per_utterance_fisher_and_taylor(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    fisher_mode: str = "empirical",
    label_source: str = "reference",
    seed: int = 0,
    method: str = "loop",
    chunk_size: int = 4,
    progress: bool = True,
    total: int | None = None,
) -> SensitivityResult:
    """Diagonal Fisher and Taylor score per element from exact per-utterance gradients (module docstring)."""
    if fisher_mode not in FISHER_MODES:
        raise ValueError(f"fisher_mode must be one of {FISHER_MODES}, got {fisher_mode!r}")
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"label_source must be one of {LABEL_SOURCES}, got {label_source!r}")
    if method not in GRADIENT_BACKENDS:
        raise ValueError(f"method must be one of {GRADIENT_BACKENDS}, got {method!r}")
    from tqdm import tqdm

    ids: list[str] = []
    n_tokens = 0
    with _all_trainable(model) as params:
        acc = _Accumulator(params)
        bar = tqdm(total=total, desc=f"sensitivity ({fisher_mode} Fisher)", unit="utt", file=sys.stderr, disable=not progress)
        device = next(iter(params.values())).device
        model_labels = fisher_mode == "true" or label_source == "greedy"
        for batch in batches:
            check_labels(model, batch)
            batch = _to_device(batch, device)
            base = len(ids)

            def targets_fn(i: int, enc: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
                return utterance_targets(
                    model, batch.decoder_input_ids[i], batch.labels[i], enc,
                    fisher_mode=fisher_mode, label_source=label_source,
                    duration_s=float(batch.durations[i]) if batch.durations else 30.0,
                    generator=_generator(seed, base + i),
                )

            rows = list(range(batch.input_features.shape[0]))
            if method == "loop":
                for i in rows:
                    n_tokens += _loop_step(model, params, acc, batch, i, targets_fn)
                    bar.update(1)
            else:
                for s in range(0, len(rows), chunk_size):
                    chunk = rows[s : s + chunk_size]
                    n_tokens += _vmap_chunk(model, params, acc, batch, chunk, targets_fn, model_labels)
                    bar.update(len(chunk))
            ids += list(batch.ids)
        bar.close()
        n = len(ids)
        if n == 0:
            raise ValueError("no calibration utterance: the batches were empty")
        with torch.no_grad():
            fisher = {k: v / n for k, v in acc.sq.items()}
            # mean_u |w·g_u| = |w| · mean_u |g_u|: one product at the end instead of one per utterance
            taylor = {k: params[k].detach().abs() * v / n for k, v in acc.abs.items()}
    return SensitivityResult(fisher, taylor, n, n_tokens, ids, fisher_mode, label_source, method)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def sensitivity_tables(model: nn.Module, result: SensitivityResult) -> pd.DataFrame:
    """One row per parameter tensor (tied tensors once), in model order."""
    rows = []
    for name, p in model.named_parameters():
        info = classify(name)
        f = result.fisher[name].double()
        numel = p.numel()
        fisher = float(f.sum())
        rows.append(
            {
                "tensor": name,
                "component": info.component,
                "side": info.side,
                "layer": int(info.layer),
                "numel": int(numel),
                "grad_score": float(result.taylor[name].double().mean()),
                "fisher": fisher,
                "fisher_per_weight": fisher / numel,
                "weight_l2": float(p.detach().double().norm()),
            }
        )
    return pd.DataFrame(rows, columns=TENSOR_COLUMNS)


def component_rollup(df: pd.DataFrame) -> pd.DataFrame:
    """Per component × side × layer: numel, numel-weighted grad_score, summed Fisher, ranks (1 = most sensitive)."""
    d = df.assign(_gw=df["grad_score"] * df["numel"])
    g = d.groupby(["component", "side", "layer"], sort=False, as_index=False).agg(
        numel=("numel", "sum"), _gw=("_gw", "sum"), fisher=("fisher", "sum"), n_tensors=("tensor", "count")
    )
    g["grad_score"] = g["_gw"] / g["numel"]
    g["fisher_per_weight"] = g["fisher"] / g["numel"]
    order = {**{c: i for i, c in enumerate(COMPONENTS)}, **_SIDE_ORDER}
    g = g.sort_values(
        ["component", "side", "layer"], key=lambda s: s.map(order) if s.name != "layer" else s, kind="stable"
    ).reset_index(drop=True)
    for score in SCORES:
        g[f"rank_{score}"] = g[score].rank(ascending=False, method="min").astype("int64")
    return g[["component", "side", "layer", "n_tensors", "numel", "grad_score", "fisher", "fisher_per_weight",
              "rank_grad_score", "rank_fisher_per_weight"]]
