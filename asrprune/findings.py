"""The findings document: claims.parquet (and the run's benchmark files) -> docs/findings.md, a CSV and a plot.

Everything in the document is computed from the tables, never written by hand; running the study
again regenerates it identically except the "Wall time" section. The findings stage
(asrprune.stages.findings) reads the tables and the benchmark files and writes the three outputs.
"""

from __future__ import annotations

import json
import numpy as np
import pandas as pd

TIMING_HEADING = "## Wall time"


def _pts(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:+.2f}"


def _cell(row: pd.Series | None) -> str:
    """`+1.23 [−0.40, +2.86] supported` in WER points (ρ for damage ranking)."""
    if row is None:
        return "not run"
    if row["outcome"] == "ranks_damage":
        return f"ρ {row['effect_abs']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}] **{row['verdict']}**"
    text = f"{_pts(row['effect_abs'])} [{_pts(row['ci_low'])}, {_pts(row['ci_high'])}]"
    if row["outcome"] == "collapses":
        text += f", WER {100 * row['wer_variant']:.1f} % [{100 * row['wer_variant_ci_low']:.1f}, {100 * row['wer_variant_ci_high']:.1f}]"
    return f"{text} **{row['verdict']}**"


def _expectation(row: pd.Series) -> str:
    t = 100 * row["threshold"]
    return {
        "improves": "ΔWER < 0" if t == 0 else f"ΔWER < −{t:g}",
        "neutral": f"|ΔWER| < {t:g}",
        "degrades": f"ΔWER > {t:g}",
        "collapses": f"WER > {t:g} %",
        "ranks_damage": "ρ > 0",
    }[row["outcome"]]


def claims_markdown(claims: pd.DataFrame, models: list[str]) -> str:
    """The headline table (one row per claim, the deciding set) and the per-set table."""
    lines = ["| claim | paper (whisper-small) | expected | set | " + " | ".join(models) + " |",
             "|---|---|---|---|" + "---|" * len(models)]
    for cid, grp in claims.groupby("claim", sort=False):
        deciding = grp[grp["decides"]]
        first = deciding.iloc[0]
        cells = []
        for m in models:
            hit = deciding[deciding["model"] == m]
            cells.append(_cell(hit.iloc[0] if len(hit) else None))
        sets = ", ".join(sorted(set(deciding["dataset"])))
        lines.append(f"| **{cid}** {first['sentence']} | {first['paper']} | {_expectation(first)} | {sets} | " + " | ".join(cells) + " |")
    lines += ["", "Every set, pooled or not (ΔWER in points, 95 % paired interval):", "",
              "| claim | set | utterances | words | " + " | ".join(models) + " |",
              "|---|---|---|---|" + "---|" * len(models)]
    for (cid, name), grp in claims.groupby(["claim", "dataset"], sort=False):
        cells = []
        for m in models:
            hit = grp[grp["model"] == m]
            cells.append(_cell(hit.iloc[0] if len(hit) else None))
        first = grp.iloc[0]
        lines.append(f"| {cid} | {name} | {int(first['n_utts'])} | {int(first['n_ref_words'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sizing_markdown(claims: pd.DataFrame, claim_id: str = "C1", goal_points: float = 1.0) -> str:
    """What interval the sets bought for `claim_id`, and how many words a ±`goal_points` interval would need.

    The half-width of a paired interval shrinks as 1/√words at a fixed per-word spread, so
    words_needed ≈ words × (half-width / goal)².
    """
    rows = claims[(claims["claim"] == claim_id) & claims["decides"]]
    if rows.empty:
        return f"{claim_id} was not run."
    out = []
    for r in rows.itertuples():
        half = 100 * (r.ci_high - r.ci_low) / 2
        need = r.n_ref_words * (half / goal_points) ** 2
        out.append(
            f"- {r.model}, {r.dataset}: {r.n_utts} utterances, {r.n_ref_words} words; the 95 % interval of ΔWER is "
            f"±{half:.2f} points (goal ±{goal_points:g}). At this spread ±{goal_points:g} needs about {need:,.0f} words "
            f"({need / max(r.n_ref_words, 1):.1f}× these sets)."
        )
    return "\n".join(out)


def timing_markdown(benchmarks: pd.DataFrame, models: list[str]) -> str:
    """Job seconds per rule and model (summed over jobs; two jobs run at once on 2 cores)."""
    def model_of(job: str) -> str:
        parts = job.split("/")
        return next((p for p in parts[1:] if p in models), "shared")

    b = benchmarks.assign(model=[model_of(j) for j in benchmarks["job"]])
    table = b.pivot_table(index="rule", columns="model", values="wall_s", aggfunc="sum", fill_value=0.0)
    cols = [m for m in models + ["shared"] if m in table.columns]
    lines = ["| rule | " + " | ".join(f"{c} (min)" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for rule, row in table.iterrows():
        lines.append(f"| {rule} | " + " | ".join(f"{row[c] / 60:.1f}" for c in cols) + " |")
    totals = table.sum()
    lines.append("| **all rules** | " + " | ".join(f"**{totals[c] / 60:.1f}**" for c in cols) + " |")
    return "\n".join(lines)


def claim_models(claims: pd.DataFrame) -> list[str]:
    """The models of the claims table, smallest name first (tiny.en before base)."""
    return sorted(claims["model"].unique(), key=lambda m: (len(m), m)) if len(claims) else []


def timing_lines(benchmarks: pd.DataFrame, span_minutes: float, models: list[str]) -> list[str]:
    """The "Wall time" section's body: job time per rule and model, and the run's elapsed time."""
    return [
        timing_markdown(benchmarks, models),
        "",
        f"Elapsed from the first job's start to the last job's end (benchmark file times): {span_minutes:.0f} min "
        "on 2 cores. Jobs of a run resumed after a stop count their own time only.",
        "",
    ]


def no_timing_lines(error: Exception) -> list[str]:
    """The "Wall time" section's body when the run left no benchmark files."""
    return [f"No benchmark files: {error}", ""]


def ablation_lines(wer: pd.DataFrame) -> list[str]:
    """The "Which entry of a schedule breaks the model" section: every `schedule-NAME-without-X` and
    `-only-X` row of the WER table beside its full schedule and the baseline on the same set, and what
    they say (the removal that restores most, the entry that breaks the model alone, the interaction:
    the sum of the only-X deltas against the full schedule's delta). Empty when the grid has no ablation."""
    import re

    pattern = re.compile(r"^schedule-(?P<name>[A-Za-z0-9_]+)-(?P<kind>without|only)-(?P<component>.+)$")
    parsed = {v: m for v in wer["variant"].unique() if (m := pattern.match(str(v)))}
    if not parsed:
        return []
    lines = ["## Which entry of a schedule breaks the model", "",
             "Schedule ablations (`schedule-NAME-without-X`: the full schedule with entry X left unpruned; "
             "`-only-X`: entry X alone), their masks the full schedule's own. Sparsity is the realized share of "
             "all parameters; WER and deltas in points.", ""]
    index = wer.set_index(["model", "variant", "dataset"])
    keys = sorted({(m.group("name"), r.model, r.dataset) for r in wer.itertuples() if (m := parsed.get(r.variant))},
                  key=lambda k: (k[0], len(k[1]), k[1], k[2]))
    for name, model, dataset in keys:
        full_id = f"schedule-{name}"
        if (model, full_id, dataset) not in index.index or (model, "baseline", dataset) not in index.index:
            lines += [f"{model}, {dataset}: the full schedule or the baseline was not decoded here.", ""]
            continue
        full, base = index.loc[(model, full_id, dataset)], index.loc[(model, "baseline", dataset)]
        rows = [(v, m) for v, m in parsed.items() if m.group("name") == name and (model, v, dataset) in index.index]
        lines += [f"**{name} on {model}, {dataset}** (baseline {100 * base['wer']:.2f} %, full schedule "
                  f"{100 * full['wer']:.2f} % at {100 * full['sparsity_overall']:.1f} % sparsity):", "",
                  "| variant | sparsity | WER | Δ vs full schedule | Δ vs baseline |", "|---|---|---|---|---|"]
        for vid in ["baseline", full_id] + [v for v, _ in rows]:
            r = index.loc[(model, vid, dataset)]
            lines.append(f"| {vid} | {100 * r['sparsity_overall']:.1f} % | {100 * r['wer']:.2f} | "
                         f"{_pts(r['wer'] - full['wer'])} | {_pts(r['wer'] - base['wer'])} |")
        without = {m.group("component"): index.loc[(model, v, dataset)]["wer"] for v, m in rows if m.group("kind") == "without"}
        only = {m.group("component"): index.loc[(model, v, dataset)]["wer"] for v, m in rows if m.group("kind") == "only"}
        lines.append("")
        if without:
            best = min(without, key=lambda c: (without[c], c))
            lines.append(f"- Removing `{best}` restores the most: {100 * without[best]:.2f} % WER, "
                         f"{_pts(without[best] - full['wer'])} points against the full schedule, "
                         f"{_pts(without[best] - base['wer'])} against the baseline.")
        if only:
            worst = max(only, key=lambda c: (only[c], c))
            lines.append(f"- Alone, `{worst}` does the most damage: {100 * only[worst]:.2f} % WER "
                         f"({_pts(only[worst] - base['wer'])} points against the baseline).")
            total = sum(w - base["wer"] for w in only.values())
            lines.append(f"- Interaction: the {len(only)} entries alone add up to {_pts(total)} points against the "
                         f"baseline; all of them together, {_pts(full['wer'] - base['wer'])}"
                         + (" (they compound)." if full["wer"] - base["wer"] > total else " (less than the sum)."))
        lines.append("")
    return lines


def findings_markdown(
    claims: pd.DataFrame, wer: pd.DataFrame, timing: list[str], *, config_hash: str, config_name: str
) -> str:
    """The findings document from the claims table, the WER table and the lines of its "Wall time" section."""
    models = claim_models(claims)
    versions = json.loads(wer["versions"].iloc[0]) if len(wer) else {}
    protocol = wer.iloc[0] if len(wer) else None
    parts: list[str] = [
        "# Findings: the paper's claims on tiny.en and base",
        "",
        f"Written by the `findings` rule from `results/{config_name}/tables/claims.parquet` (config `{config_name}`, "
        f"config hash `{config_hash}`); do not edit by hand. Claims are defined in `config/claims.yaml`; "
        "the verdict logic is in `asrprune/claims.py`. Effects are ΔWER = WER(variant) − WER(reference) in WER "
        "points on the same utterances, with 95 % paired bootstrap intervals; a verdict is `supported` when the "
        "whole interval lies on the claimed side of the threshold, `contradicted` when it lies wholly on the "
        "other side, `inconclusive` otherwise.",
        "",
    ]
    if protocol is not None:
        parts += [
            f"Protocol: greedy decoding (beams {int(protocol['decode_num_beams'])}, batch {int(protocol['decode_batch_size'])}), "
            f"language `{protocol.get('decode_language', 'en')}`, normalizer `{protocol['normalizer']}`, float32 on CPU. "
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
            "",
        ]
    parts += ["## Verdicts", "", claims_markdown(claims, models) if len(claims) else "No claim was evaluated.", ""]
    parts += ["## How the sets were sized", "", sizing_markdown(claims), ""]
    baselines = wer[wer["variant"] == "baseline"].sort_values(["model", "dataset"])
    if len(baselines):
        parts += ["Baseline WER per set: " + "; ".join(
            f"{r.model} {r.dataset} {100 * r.wer:.2f} % ({r.n_ref_words} words)" for r in baselines.itertuples()) + ".", ""]
    parts += ["![effect against model size](findings_effects.png)", ""]
    parts += ablation_lines(wer)
    parts += [TIMING_HEADING, ""]
    parts += timing
    return "\n".join(parts)
