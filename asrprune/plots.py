"""Figures for the paper and the Snakemake report, drawn from the WER table (results/{name}/tables/wer.parquet),
the claims table and the sensitivity rollup.

Every figure is a PNG written atomically; the same table gives the same bytes (fixed style, no
timestamp or software version in the PNG metadata). Error rates in the table are fractions; the
figures show them in percent (WER %) and differences in percentage points (pp).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from asrprune.components import COMPONENTS  # noqa: E402
from asrprune.io import atomic_path  # noqa: E402
from asrprune.variants import BASELINE  # noqa: E402

WER_VS_SPARSITY_COLUMNS = ("model", "variant", "method", "target", "sparsity_overall", "dataset", "wer", "wer_ci_low", "wer_ci_high")
DELTA_COLUMNS = ("model", "variant", "dataset", "wer", "wer_ci_low", "wer_ci_high", "delta_wer_abs", "p_value")
PREDICTED_VS_MEASURED_COLUMNS = ("model", "variant", "dataset", "delta_wer_abs", "predicted_damage")
CORRELATION_COLUMNS = ("model", "dataset", "n_variants", "spearman_rho", "p_value")
SIGNIFICANCE = 0.05
DPI = 120

# Independent of the user's matplotlibrc: the bundled DejaVu fonts, fixed sizes, a fixed hash salt.
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "svg.hashsalt": "asrprune",
    "path.simplify": True,
}
# Matplotlib writes "Software: Matplotlib version ..." into PNGs unless told not to.
_PNG_METADATA = {"Software": None}
_COLORS = plt.get_cmap("tab10").colors
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


class PlotInputError(ValueError):
    """The table lacks what a figure needs."""


def require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a PlotInputError naming every column `what` needs that `table` lacks."""
    if not isinstance(table, pd.DataFrame):
        raise PlotInputError(f"{what}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise PlotInputError(
            f"{what}: the table lacks required column(s) {missing}; it has {sorted(map(str, table.columns))}"
        )


def _normalizer_note(table: pd.DataFrame) -> str:
    if "normalizer" not in table.columns:
        return ""
    names = sorted({str(n) for n in table["normalizer"].dropna()})
    return f"text normalizer: {', '.join(names)}" if names else ""


def _save(fig: plt.Figure, out_png: str | os.PathLike) -> Path:
    out = Path(out_png)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata=_PNG_METADATA, dpi=DPI)
    plt.close(fig)
    return out


def _message_figure(out_png: str | os.PathLike, title: str, message: str) -> Path:
    """A small figure that says why there is nothing to plot (an empty file would break the report)."""
    with plt.style.context("default"), plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 2.4), layout="constrained")
        ax.axis("off")
        ax.set_title(title)
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
        return _save(fig, out_png)


def _pct(values: Sequence[float] | pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float) * 100.0


def _series_style(index: int) -> dict:
    return {
        "color": _COLORS[index % len(_COLORS)],
        "linestyle": _LINESTYLES[(index // len(_COLORS)) % len(_LINESTYLES)],
        "marker": _MARKERS[index % len(_MARKERS)],
    }


def _finite_interval(low: np.ndarray, high: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """Non-negative asymmetric error-bar lengths; NaN where the interval is missing."""
    return np.vstack([np.clip(mid - low, 0, None), np.clip(high - mid, 0, None)])


def plot_wer_vs_sparsity(table: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """WER against realized sparsity of all parameters: one line per method · target, one panel per model × dataset.

    Realized, not requested: a component at 50 % and a schedule at "40 %" prune very different shares
    of the model, and equal-sparsity comparisons (`METHOD-as-NAME`) must line up on the x axis.

    Shaded bands and error bars are the 95% bootstrap intervals (wer_ci_low/high); the baseline is
    a horizontal black line with its own interval as a grey band.
    """
    require_columns(table, WER_VS_SPARSITY_COLUMNS, "plot_wer_vs_sparsity")
    title = "WER vs realized sparsity"
    data = table[table["wer"].notna()]
    if data.empty:
        return _message_figure(out_png, title, "No WER values in the table (every row is NaN or the table is empty).")
    models = sorted(data["model"].astype(str).unique())
    datasets = sorted(data["dataset"].astype(str).unique())
    pruned = data[data["variant"] != BASELINE]
    series = sorted({(str(m), str(t)) for m, t in zip(pruned["method"], pruned["target"])})
    styles = {key: _series_style(i) for i, key in enumerate(series)}

    with plt.style.context("default"), plt.rc_context(_STYLE):
        ncols, nrows = len(datasets), len(models)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(max(4.2 * ncols, 6.0), 3.6 * nrows + 1.2), squeeze=False, sharex=True,
            layout="constrained",
        )
        handles: dict[str, object] = {}
        for r, model in enumerate(models):
            for c, dataset in enumerate(datasets):
                ax = axes[r][c]
                cell = data[(data["model"].astype(str) == model) & (data["dataset"].astype(str) == dataset)]
                base = cell[cell["variant"] == BASELINE]
                if len(base):
                    b = base.iloc[0]
                    line = ax.axhline(100 * b["wer"], color="black", linewidth=1.2, zorder=3)
                    handles.setdefault("baseline (unpruned)", line)
                    if np.isfinite(b["wer_ci_low"]) and np.isfinite(b["wer_ci_high"]):
                        band = ax.axhspan(100 * b["wer_ci_low"], 100 * b["wer_ci_high"], color="0.6", alpha=0.25, lw=0, zorder=1)
                        handles.setdefault("baseline 95% CI", band)
                cell_pruned = cell[cell["variant"] != BASELINE]
                for key in series:
                    grp = cell_pruned[(cell_pruned["method"].astype(str) == key[0]) & (cell_pruned["target"].astype(str) == key[1])]
                    if grp.empty:
                        continue
                    grp = grp.sort_values(["sparsity_overall", "variant"])
                    x = 100 * grp["sparsity_overall"].to_numpy(dtype=float)
                    y, lo, hi = _pct(grp["wer"]), _pct(grp["wer_ci_low"]), _pct(grp["wer_ci_high"])
                    st = styles[key]
                    label = f"{key[0]} · {key[1]}"
                    ok = np.isfinite(lo) & np.isfinite(hi)
                    if ok.sum() >= 2:
                        ax.fill_between(x[ok], lo[ok], hi[ok], color=st["color"], alpha=0.15, lw=0, zorder=2)
                    yerr = _finite_interval(np.where(ok, lo, y), np.where(ok, hi, y), y)
                    cont = ax.errorbar(
                        x, y, yerr=yerr, color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
                        markersize=5, capsize=3, linewidth=1.5, zorder=4,
                    )
                    handles.setdefault(label, cont)
                ax.set_title(f"{model} — {dataset}" if nrows > 1 else dataset)
                if r == nrows - 1:
                    ax.set_xlabel("realized sparsity, all parameters (%)")
                if c == 0:
                    ax.set_ylabel("WER (%)")
                ax.set_ylim(bottom=0)
                if cell.empty:
                    ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes, color="0.4")
        xs = 100 * data["sparsity_overall"].to_numpy(dtype=float)
        xs = xs[np.isfinite(xs)]
        if xs.size:
            axes[0][0].set_xlim(min(0.0, xs.min()) - 1, xs.max() + 2)
        note = _normalizer_note(data)
        suptitle = title + (f" ({models[0]})" if nrows == 1 else "")
        fig.suptitle(suptitle + (f"\n{note}; bands: 95% bootstrap CI over utterances" if note else "\nbands: 95% bootstrap CI over utterances"), fontsize=11)
        fig.legend(
            list(handles.values()), list(handles.keys()), loc="outside lower center",
            ncol=min(4, max(1, len(handles))), frameon=False,
        )
        return _save(fig, out_png)


def _variant_order(table: pd.DataFrame) -> list[str]:
    cols = [c for c in ("method", "target", "sparsity") if c in table.columns]
    rows = table.drop_duplicates("variant")
    if cols:
        rows = rows.sort_values(cols + ["variant"], kind="mergesort")
    else:
        rows = rows.sort_values("variant")
    return [str(v) for v in rows["variant"]]


def plot_delta_bars(table: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """ΔWER against the baseline, one horizontal bar per variant and dataset, one panel per model.

    Error bars: the paired-bootstrap interval of the difference when the table has
    `delta_ci_low`/`delta_ci_high`; otherwise the variant's own 95% WER interval shifted by the
    baseline's WER (the variant's sampling spread only — not a paired interval on the difference).
    A star marks p < 0.05 in the paired bootstrap test against the baseline.
    """
    require_columns(table, DELTA_COLUMNS, "plot_delta_bars")
    title = "ΔWER vs the unpruned baseline"
    data = table[(table["variant"] != BASELINE) & table["delta_wer_abs"].notna()]
    if data.empty:
        return _message_figure(out_png, title, "No pruned variant with a measured ΔWER in the table.")
    paired = {"delta_ci_low", "delta_ci_high"} <= set(table.columns)
    models = sorted(data["model"].astype(str).unique())
    datasets = sorted(table["dataset"].astype(str).unique())
    colors = {d: _COLORS[i % len(_COLORS)] for i, d in enumerate(datasets)}
    base = table[table["variant"] == BASELINE].set_index(["model", "dataset"])["wer"]
    orders = {m: _variant_order(data[data["model"].astype(str) == m]) for m in models}
    heights = [max(2.0, 0.32 * len(orders[m]) * max(1, len(datasets)) + 1.0) for m in models]

    with plt.style.context("default"), plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            len(models), 1, figsize=(9.0, sum(heights) + 1.4), squeeze=False,
            gridspec_kw={"height_ratios": heights}, layout="constrained",
        )
        any_star = False
        for ax, model in zip(axes[:, 0], models):
            order = orders[model]
            cell = data[data["model"].astype(str) == model]
            width = 0.8 / max(1, len(datasets))
            for j, dataset in enumerate(datasets):
                rows = cell[cell["dataset"].astype(str) == dataset].set_index("variant").reindex(order)
                ypos = np.arange(len(order)) + (j - (len(datasets) - 1) / 2) * width
                delta = _pct(rows["delta_wer_abs"])
                if paired:
                    lo, hi = _pct(rows["delta_ci_low"]), _pct(rows["delta_ci_high"])
                else:
                    b = base.get((model, dataset), np.nan)
                    b = float(b) if np.ndim(b) == 0 else float(np.asarray(b).ravel()[0])
                    lo, hi = _pct(rows["wer_ci_low"] - b), _pct(rows["wer_ci_high"] - b)
                ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(delta)
                xerr = _finite_interval(np.where(ok, lo, delta), np.where(ok, hi, delta), delta)
                xerr = np.nan_to_num(xerr)
                has = np.isfinite(delta)
                ax.barh(
                    ypos[has], delta[has], height=width * 0.9, color=colors[dataset], label=dataset,
                    xerr=xerr[:, has], error_kw={"ecolor": "0.25", "capsize": 2, "elinewidth": 1},
                )
                pv = rows["p_value"].to_numpy(dtype=float)
                for y, d, p, e_hi, e_lo in zip(ypos, delta, pv, xerr[1], xerr[0]):
                    if np.isfinite(d) and np.isfinite(p) and p < SIGNIFICANCE:
                        any_star = True
                        reach = d + e_hi if d >= 0 else d - e_lo
                        ax.annotate(
                            "*", (reach, y), xytext=(4 if d >= 0 else -4, -4), textcoords="offset points",
                            ha="left" if d >= 0 else "right", va="center", fontsize=13, fontweight="bold",
                        )
            ax.axvline(0, color="black", linewidth=1)
            ax.set_yticks(np.arange(len(order)))
            ax.set_yticklabels(order)
            ax.invert_yaxis()
            ax.set_xlabel("ΔWER vs baseline (percentage points)")
            ax.set_title(model)
            ax.grid(axis="y", visible=False)
            ax.margins(x=0.12)
        handles, labels = axes[0][0].get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        bar_note = (
            "error bars: 95% paired bootstrap CI of ΔWER"
            if paired
            else "error bars: variant's 95% WER CI minus baseline WER (not a paired CI)"
        )
        star_note = "* paired bootstrap p < 0.05" + ("" if any_star else " (none)")
        note = _normalizer_note(data)
        fig.suptitle("\n".join(filter(None, [title, bar_note, star_note + (f"; {note}" if note else "")])), fontsize=10)
        fig.legend(
            list(seen.values()), list(seen.keys()), loc="outside lower center", ncol=min(4, max(1, len(seen))),
            frameon=False, title="test set",
        )
        return _save(fig, out_png)


def _correlation_lookup(
    table: pd.DataFrame, correlation: pd.DataFrame | None
) -> dict[tuple[str, str], tuple[float, int]]:
    if correlation is None:
        from asrprune.tables import damage_correlation

        correlation = damage_correlation(table)
    require_columns(correlation, CORRELATION_COLUMNS, "plot_predicted_vs_measured (correlation table)")
    return {
        (str(r.model), str(r.dataset)): (float(r.spearman_rho), int(r.n_variants))
        for r in correlation.itertuples(index=False)
    }


def plot_predicted_vs_measured(
    table: pd.DataFrame, out_png: str | os.PathLike, correlation: pd.DataFrame | None = None
) -> Path:
    """Predicted damage (log x) against measured ΔWER, one colour per dataset, one panel per model.

    The legend gives Spearman's ρ per dataset from `correlation` (results/{name}/tables/damage_correlation.parquet),
    or recomputed from the table with `asrprune.tables.damage_correlation` when none is given.
    Variants whose predicted damage is not positive cannot sit on a log axis and are counted in the title.
    """
    require_columns(table, PREDICTED_VS_MEASURED_COLUMNS, "plot_predicted_vs_measured")
    title = "Predicted damage vs measured ΔWER"
    pruned = table[(table["variant"] != BASELINE)]
    data = pruned[pruned["predicted_damage"].notna() & pruned["delta_wer_abs"].notna()]
    if data.empty:
        return _message_figure(out_png, title, "No pruned variant has both a predicted damage and a measured ΔWER.")
    rho = _correlation_lookup(table, correlation)
    models = sorted(data["model"].astype(str).unique())
    datasets = sorted(data["dataset"].astype(str).unique())
    colors = {d: _COLORS[i % len(_COLORS)] for i, d in enumerate(datasets)}
    markers = {d: _MARKERS[i % len(_MARKERS)] for i, d in enumerate(datasets)}

    with plt.style.context("default"), plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, len(models), figsize=(6.8 * len(models), 5.2), squeeze=False, layout="constrained")
        for ax, model in zip(axes[0], models):
            cell = data[data["model"].astype(str) == model]
            positive = cell[cell["predicted_damage"] > 0]
            dropped = len(cell) - len(positive)
            for dataset in datasets:
                grp = positive[positive["dataset"].astype(str) == dataset].sort_values("predicted_damage")
                r, n = rho.get((model, dataset), (float("nan"), int((cell["dataset"].astype(str) == dataset).sum())))
                rho_text = f"ρ = {r:+.2f}" if np.isfinite(r) else "ρ = n/a"
                label = f"{dataset} ({rho_text}, n = {n})"
                ax.scatter(
                    grp["predicted_damage"].to_numpy(dtype=float), _pct(grp["delta_wer_abs"]),
                    color=colors[dataset], marker=markers[dataset], s=36, label=label, zorder=3,
                )
            if 0 < positive["variant"].nunique() <= 8:
                # Name each variant once, beside its highest point (datasets share the x position).
                top = positive.sort_values(["delta_wer_abs", "dataset"], ascending=[False, True]).drop_duplicates("variant")
                for x, y, v in zip(top["predicted_damage"], _pct(top["delta_wer_abs"]), top["variant"]):
                    ax.annotate(str(v), (x, y), xytext=(0, 7), textcoords="offset points", fontsize=7, color="0.3", ha="center")
            if len(positive):
                ax.set_xscale("log")
                lo, hi = positive["predicted_damage"].min(), positive["predicted_damage"].max()
                if lo == hi:
                    ax.set_xlim(lo / 3, hi * 3)
                else:
                    span = (hi / lo) ** 0.12
                    ax.set_xlim(lo / span, hi * span)
            ax.margins(y=0.12)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xlabel("predicted damage: OBD ½ Σ F·w² over pruned weights (log scale)")
            ax.set_ylabel("measured ΔWER vs baseline (percentage points)")
            sub = model + (f"\n{dropped} variant(s) with predicted damage ≤ 0 not shown" if dropped else "")
            ax.set_title(sub)
            ax.legend(title="test set (Spearman ρ over variants)", loc="best", frameon=True)
        note = _normalizer_note(data)
        fig.suptitle(title + ("\n" + note if note else ""), fontsize=11)
        return _save(fig, out_png)


VERDICT_COLORS = {"supported": "#1b7837", "contradicted": "#b2182b", "inconclusive": "#7f7f7f"}


def plot_claims_forest(claims: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """One row per claim × model × set: the effect with its 95 % interval, the threshold dashed.

    ΔWER claims are drawn in WER points; `collapses` rows show the variant's own WER, `ranks_damage`
    rows Spearman ρ (×100), each against its own threshold. Colour is the verdict; the rows that
    decide a claim are bold.
    """
    title = "Claims: effect and 95 % interval (WER points; ρ×100 for damage ranking)"
    if claims.empty:
        return _message_figure(out_png, title, "No claim could be evaluated: the grid runs none of their variants.")
    rows = claims.sort_values(["claim", "model", "decides", "dataset"], ascending=[True, True, False, True]).reset_index(drop=True)
    with plt.style.context("default"), plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.6), layout="constrained")
        labels = []
        for i, r in rows.iterrows():
            y = len(rows) - 1 - i
            if r["outcome"] == "collapses":
                mid, lo, hi, thr = r["wer_variant"], r["wer_variant_ci_low"], r["wer_variant_ci_high"], r["threshold"]
            else:
                mid, lo, hi = decided_effect(r)
                thr = {"improves": -r["threshold"], "degrades": r["threshold"]}.get(r["outcome"], r["threshold"])
            color = VERDICT_COLORS.get(r["verdict"], "black")
            ax.errorbar([100 * mid], [y], xerr=[[100 * max(mid - lo, 0)], [100 * max(hi - mid, 0)]], fmt="o", color=color,
                        capsize=3, markersize=5 if r["decides"] else 3.5)
            thresholds = [-thr, thr] if r["outcome"] == "neutral" else [thr]
            for t in thresholds:
                ax.plot([100 * t] * 2, [y - 0.4, y + 0.4], color="black", linestyle="--", linewidth=1)
            labels.append((f"{r['claim']} · {r['model']} · {r['dataset']}", bool(r["decides"])))
        ax.set_yticks(range(len(rows) - 1, -1, -1), [lab for lab, _ in labels])
        for tick, (_, bold) in zip(ax.get_yticklabels(), labels):
            tick.set_fontweight("bold" if bold else "normal")
        ax.axvline(0, color="0.5", linewidth=0.8)
        ax.set_xscale("symlog", linthresh=5)
        ax.set_xlabel("effect (symlog): ΔWER points; collapses: variant WER %; ranks_damage: ρ×100")
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in VERDICT_COLORS.items()]
        handles.append(plt.Line2D([], [], color="black", linestyle="--", label="decision threshold"))
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle(title, fontsize=11)
        return _save(fig, out_png)


MODEL_PARAMS_M = {"tiny.en": 39, "tiny": 39, "base.en": 74, "base": 74, "small.en": 244, "small": 244}


def decided_effect(row: pd.Series) -> tuple[float, float, float]:
    """(effect, low, high) on the measure the claim is decided on: bounded ΔWER for `measure: bounded`."""
    if row.get("measure") == "bounded" and row["outcome"] != "ranks_damage" and np.isfinite(row.get("effect_bounded", np.nan)):
        return row["effect_bounded"], row["ci_low_bounded"], row["ci_high_bounded"]
    return row["effect_abs"], row["ci_low"], row["ci_high"]


def plot_effect_vs_model_size(claims: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """Each ΔWER claim's deciding effect against model size, ours with intervals, the paper's small as a star."""
    title = "Effect against model size (deciding set of each claim)"
    rows = claims[claims["decides"] & ~claims["outcome"].isin(["ranks_damage"])]
    if rows.empty:
        return _message_figure(out_png, title, "No ΔWER claim was evaluated.")
    ids = sorted(rows["claim"].unique())
    ncols = min(4, len(ids))
    nrows = -(-len(ids) // ncols)
    with plt.style.context("default"), plt.rc_context(_STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows + 0.8), squeeze=False, layout="constrained")
        for k, cid in enumerate(ids):
            ax = axes[k // ncols][k % ncols]
            grp = rows[rows["claim"] == cid]
            for _, r in grp.iterrows():
                x = MODEL_PARAMS_M.get(r["model"], np.nan)
                mid, lo, hi = decided_effect(r)
                ax.errorbar([x], [100 * mid], yerr=[[100 * max(mid - lo, 0)], [100 * max(hi - mid, 0)]],
                            fmt="o", color=VERDICT_COLORS.get(r["verdict"], "black"), capsize=3)
            paper = grp["paper_effect"].dropna()
            if len(paper):
                ax.plot([244], [float(paper.iloc[0])], marker="*", markersize=11, color="#2166ac", linestyle="")
            ax.axhline(0, color="0.5", linewidth=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # log minor ticks would label 3×10¹ ...
            ax.set_xticks([39, 74, 244], ["39M", "74M", "244M"])
            ax.set_xlim(30, 320)
            ax.set_title(cid)
            ax.set_ylabel("ΔWER (points)")
        for k in range(len(ids), nrows * ncols):
            axes[k // ncols][k % ncols].axis("off")
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in VERDICT_COLORS.items()]
        handles.append(plt.Line2D([], [], marker="*", linestyle="", color="#2166ac", markersize=11, label="paper (whisper-small)"))
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle(title, fontsize=11)
        return _save(fig, out_png)


# --------------------------------------------------------------------------------------------------
# The sensitivity stage's heatmap, drawn from its component rollup


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


def plot_sensitivity_heatmap(
    rollup: pd.DataFrame, path_png: str | os.PathLike, score: str | tuple[str, ...]
) -> None:
    """Layer × component heatmap of a sensitivity rollup (asrprune.sensitivity.component_rollup), one
    panel per score (the stage passes asrprune.sensitivity.SCORES), log colour scale; written atomically."""
    from matplotlib.colors import LogNorm

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
