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
(start-of-transcript, language, task, no-timestamps) and padding are never labels.

Per-sample gradients: `method="loop"` runs one forward+backward per utterance, trimmed to its own
length; `method="vmap"` uses `torch.func` (functional_call + vmap(grad)) over chunks of utterances.
Both are exact. Measured with bench/bench_fisher.py on tiny.en (CPU time, 1 thread), the loop costs
1.05-1.15x a plain batched forward+backward over the same utterances: Whisper's 1500-frame encoder
already fills the cores at batch 1, so what the loop adds is squaring and accumulating 38M gradient
entries per utterance (~5 %). vmap costs 1.4-1.7x (no batching rule for CPU scaled-dot-product
attention, and all per-sample gradients of a chunk live at once); the loop is the default.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from torch import nn

from asrprune.batches import IGNORE_INDEX, Batch, select_utterances  # noqa: F401 (select_utterances: re-exported)
from asrprune.components import COMPONENTS, classify

log = logging.getLogger(__name__)

FISHER_MODES = ("empirical", "true")
LABEL_SOURCES = ("reference", "greedy")
METHODS = ("loop", "vmap")
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
# Labels
# --------------------------------------------------------------------------------------------


def _eos_ids(model: nn.Module) -> set[int]:
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
    eos = _eos_ids(model)
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
    from asrprune.decode import DecodeSettings, token_limit

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
    eos = min(_eos_ids(model))
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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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
# Tables and figure
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


def _heatmap_grid(rollup: pd.DataFrame, score: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Rows = component (and side where a component spans both), columns = layer 1..L plus '—' (outside blocks)."""
    rows: list[tuple[str, str]] = []
    for comp in COMPONENTS:
        sides = [s for s in ("encoder", "decoder", "shared") if ((rollup["component"] == comp) & (rollup["side"] == s)).any()]
        rows += [(comp, s) for s in sides]
    n_layers = int(rollup["layer"].max()) + 1 if len(rollup) else 0
    has_outside = bool((rollup["layer"] < 0).any())
    cols = [str(i + 1) for i in range(n_layers)] + (["—"] if has_outside else [])
    grid = np.full((len(rows), len(cols)), np.nan)
    for r, (comp, side) in enumerate(rows):
        sel = rollup[(rollup["component"] == comp) & (rollup["side"] == side)]
        for _, row in sel.iterrows():
            c = len(cols) - 1 if row["layer"] < 0 else int(row["layer"])
            grid[r, c] = row[score]
    spans = {c for c, _ in rows if sum(1 for cc, _ in rows if cc == c) > 1}
    labels = [f"{c} ({s[:3]})" if c in spans or c in ("layernorm", "bias") else c for c, s in rows]
    return grid, labels, cols


def heatmap(rollup: pd.DataFrame, path_png: str | Path, score: tuple[str, ...] = SCORES) -> None:
    """Layer × component heatmap, one panel per score, log colour scale; written atomically (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from asrprune.io import atomic_path

    scores = (score,) if isinstance(score, str) else tuple(score)
    titles = {
        "grad_score": "Taylor |w·∂L/∂w| (mean per weight)",
        "fisher_per_weight": "Fisher per weight",
        "fisher": "Fisher (sum over tensor)",
    }
    with plt.style.context("default"):
        fig, axes = plt.subplots(1, len(scores), figsize=(5.2 * len(scores), 4.8), squeeze=False)
        for ax, s in zip(axes[0], scores):
            grid, ylabels, xlabels = _heatmap_grid(rollup, s)
            pos = grid[np.isfinite(grid) & (grid > 0)]
            norm = LogNorm(vmin=pos.min(), vmax=pos.max()) if pos.size and pos.min() < pos.max() else None
            # zeros cannot sit on a log scale: shown blank, like cells with no tensor
            shown = np.ma.masked_where(~np.isfinite(grid) | (grid <= 0), grid)
            im = ax.imshow(shown, aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
            ax.set_xticks(range(len(xlabels)), xlabels)
            ax.set_yticks(range(len(ylabels)), ylabels)
            ax.set_xlabel("layer (— = outside the blocks)")
            ax.set_title(titles.get(s, s), fontsize=10)
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.tight_layout()
        with atomic_path(path_png) as tmp:
            fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
        plt.close(fig)


# --------------------------------------------------------------------------------------------
# Stage entry point
# --------------------------------------------------------------------------------------------


def save_fisher(fisher: dict[str, torch.Tensor], path: str | Path) -> None:
    """Per-element Fisher as float32 safetensors, keys = tensor names, written atomically."""
    from safetensors.torch import save_file

    from asrprune.io import atomic_path

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in fisher.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"content": "diagonal Fisher, mean over utterances of squared per-utterance gradients"})


def run_sensitivity(
    model_dir: str | Path,
    calib_parquet: str | Path,
    out_dir: str | Path,
    *,
    n_utts: int,
    batch_size: int,
    fisher_mode: str = "empirical",
    seed: int = 0,
    label_source: str = "reference",
    method: str = "loop",
    device: str = "cpu",
    outputs: dict[str, str | Path] | None = None,
) -> None:
    """The sensitivity stage: tensors.parquet, components.parquet, fisher.safetensors, heatmap.png, calibration.json.

    `outputs` overrides single paths (keys tensors, components, fisher, heatmap, calibration);
    `device` is cpu, cuda or auto (CUDA when present); statistics are float32 either way.
    """
    from asrprune.batches import iter_batches, read_calibration
    from asrprune.io import write_json, write_parquet
    from asrprune.models import generation_prompt_ids, load_model

    out_dir = Path(out_dir)
    paths = {k: out_dir / f for k, f in [("tensors", "tensors.parquet"), ("components", "components.parquet"),
                                          ("fisher", "fisher.safetensors"), ("heatmap", "heatmap.png"),
                                          ("calibration", "calibration.json")]}
    paths.update({k: Path(v) for k, v in (outputs or {}).items()})
    torch.manual_seed(seed)
    from asrprune.decode import resolve_device

    dev = resolve_device(device)
    model, processor = load_model(model_dir, device=str(dev))
    prompt = generation_prompt_ids(model)
    df = read_calibration(calib_parquet, n_utts, seed)  # the utterances wanda's norms use too
    if len(df) < n_utts:
        log.warning("calibration split has %d utterances, fewer than n_utts=%d: using all", len(df), n_utts)
    batches = iter_batches(df, processor, batch_size, prompt_ids=prompt, eos_id=min(_eos_ids(model)))
    t0 = time.perf_counter()
    result = per_utterance_fisher_and_taylor(
        model, batches, fisher_mode=fisher_mode, label_source=label_source, seed=seed, method=method, total=len(df)
    )
    seconds = time.perf_counter() - t0
    tensors = sensitivity_tables(model, result)
    rollup = component_rollup(tensors)
    meta = {"fisher_mode": fisher_mode, "label_source": label_source, "n_utts": result.n_utts, "seed": seed}
    write_parquet(tensors, paths["tensors"], metadata={"sensitivity": meta})
    write_parquet(rollup, paths["components"], metadata={"sensitivity": meta})
    save_fisher(result.fisher, paths["fisher"])
    heatmap(rollup, paths["heatmap"])
    write_json(
        {
            "n_utts": result.n_utts,
            "n_utts_requested": n_utts,
            "batch_size": batch_size,
            "fisher_mode": fisher_mode,
            "label_source": label_source,
            "seed": seed,
            "method": method,
            "loss": "sum of token cross-entropies per utterance (sequence NLL); prompt and padding excluded",
            "n_label_tokens": result.n_label_tokens,
            "ids": result.ids,
            "prompt_ids": prompt,
            "seconds": round(seconds, 3),
            "seconds_per_utt": round(seconds / max(result.n_utts, 1), 4),
            "torch_threads": torch.get_num_threads(),
            "device": str(dev),
            "model_dir": str(model_dir),
            "calib": str(calib_parquet),
        },
        paths["calibration"],
    )
    log.info("sensitivity: %d utterances, %d label tokens, %.1f s", result.n_utts, result.n_label_tokens, seconds)
