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


def _get(row: pd.Series, key: str, default=np.nan):
    """A column of a claims row; tables written before issue 20 lack the newer ones."""
    value = row.get(key, default)
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _cell(row: pd.Series | None, bold: bool = True) -> str:
    """`+1.23 [−0.40, +2.86] supported` in WER points (ρ for damage ranking), on the claim's measure.

    Deciding cells (`bold`) add the verdict adjusted for the family (`adj.`); per-set cells are
    descriptive and plain. Runaway counts (variant/reference) show where either side ran away.
    """
    if row is None:
        return "not run"
    mark = (lambda v: f"**{v}**") if bold else (lambda v: v)
    adjusted = _get(row, "verdict_adjusted", "")
    adj = f" (adj. {adjusted})" if bold and isinstance(adjusted, str) and adjusted else ""
    if row["outcome"] == "ranks_damage":
        text = f"ρ {row['effect_abs']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
        if np.isfinite(_get(row, "rho_variants")):
            text += f"; over {int(row['n_variants'])} variants ρ {row['rho_variants']:+.2f}, p {row['p_variants']:.3f}"
            fallen = _get(row, "collapsed_variants", "")
            if isinstance(fallen, str) and fallen:
                text += f" ({len(fallen.split(','))} collapsed apart)"
        return f"{text} {mark(row['verdict'])}{adj}"
    bounded = _get(row, "measure", "raw") == "bounded" and row["outcome"] != "collapses"
    if bounded:
        text = f"{_pts(row['effect_bounded'])} [{_pts(row['ci_low_bounded'])}, {_pts(row['ci_high_bounded'])}] bounded"
        text += f" (raw {_pts(row['effect_abs'])})"
    else:
        text = f"{_pts(row['effect_abs'])} [{_pts(row['ci_low'])}, {_pts(row['ci_high'])}]"
    if bool(_get(row, "ci_bound", False)):
        text += " (no prompt changed: bound)"
    if row["outcome"] == "collapses":
        text += f", WER {100 * row['wer_variant']:.1f} % [{100 * row['wer_variant_ci_low']:.1f}, {100 * row['wer_variant_ci_high']:.1f}]"
    runaway_v, runaway_r = _get(row, "n_runaway_variant", 0), _get(row, "n_runaway_reference", 0)
    if np.isfinite(runaway_v) and (runaway_v or runaway_r):
        text += f", runaways {int(runaway_v)}/{int(runaway_r)}"
    return f"{text} {mark(row['verdict'])}{adj}"


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
    """The headline table (one row per claim, the deciding set) and the per-set table (descriptive)."""
    lines = ["| claim | paper (whisper-small) | expected | set | prompts | " + " | ".join(models) + " |",
             "|---|---|---|---|---|" + "---|" * len(models)]
    for cid, grp in claims.groupby("claim", sort=False):
        deciding = grp[grp["decides"]]
        first = deciding.iloc[0]
        cells = []
        for m in models:
            hit = deciding[deciding["model"] == m]
            cells.append(_cell(hit.iloc[0] if len(hit) else None))
        sets = ", ".join(sorted(set(deciding["dataset"])))
        lines.append(f"| **{cid}** {first['sentence']} | {first['paper']} | {_expectation(first)} | {sets} | "
                     f"{_units(first)} | " + " | ".join(cells) + " |")
    lines += ["", "Every set, pooled or not: descriptive, outside the family (ΔWER in points, 95 % paired interval, "
              "prompts resampled; runaways variant/reference):", "",
              "| claim | set | utterances | prompts | words | " + " | ".join(models) + " |",
              "|---|---|---|---|---|" + "---|" * len(models)]
    for (cid, name), grp in claims.groupby(["claim", "dataset"], sort=False):
        cells = []
        for m in models:
            hit = grp[grp["model"] == m]
            cells.append(_cell(hit.iloc[0] if len(hit) else None, bold=False))
        first = grp.iloc[0]
        lines.append(f"| {cid} | {name} | {int(first['n_utts'])} | {_units(first)} | {int(first['n_ref_words'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _units(row: pd.Series) -> str:
    """How many resampling units a row had, and which (`45 prompts`, `48 utterances`)."""
    k = _get(row, "n_units")
    if not np.isfinite(k):
        return f"{int(row['n_utts'])} utterances"
    return f"{int(k)} {'prompts' if _get(row, 'resampling_unit', 'prompt') == 'prompt' else 'utterances'}"


def policy_markdown(claims: pd.DataFrame, policy: dict | None = None) -> str:
    """The family-wise policy in words, from the claims table's adjusted columns."""
    deciding = claims[claims["decides"]] if len(claims) else claims
    if "family_size" not in claims or deciding.empty or not np.isfinite(deciding["family_size"].iloc[0]):
        return "No family-wise policy was applied to this table (written before the claims declared one)."
    m = int(deciding["family_size"].iloc[0])
    level = float(deciding["level_adjusted"].iloc[0])
    method = (policy or {}).get("method", "bonferroni")
    alpha = (policy or {}).get("alpha", round((1 - level) * m, 6) if method == "bonferroni" else 1 - level)
    changed = deciding[deciding["verdict"] != deciding["verdict_adjusted"]]
    return (
        f"Family-wise policy (declared in `config/claims.yaml`, `multiplicity:`, before the verdicts): `{method}` at "
        f"alpha {alpha:g} over the family of the {m} deciding verdicts (claim × model). Each deciding verdict is also "
        f"read on its interval at level {100 * level:.3f} % (1 − {alpha:g}/{m}; for C10 its permutation p at "
        f"{alpha:g}/{m}), shown as *adj.*: the chance that any adjusted verdict rests on an interval that misses its "
        f"effect is at most {alpha:g}. Unadjusted, about {alpha * m:.1f} of {m} verdicts at 95 % could be wrong by "
        f"chance. The adjustment changes {len(changed)} of {m} verdicts. Per-set rows are descriptive and outside the family."
    )


def sizing_markdown(claims: pd.DataFrame, claim_id: str = "C1", goal_points: float = 1.0) -> str:
    """What interval the sets bought for `claim_id`, and how many independent prompts ±`goal_points` would need.

    The half-width of a paired interval shrinks as 1/√(independent units) at a fixed per-unit
    spread: units_needed ≈ units × (half-width / goal)². The unit is the source prompt (degraded
    copies of one prompt are not independent), so the count is of prompts, with their words at
    the same words per prompt.
    """
    rows = claims[(claims["claim"] == claim_id) & claims["decides"]]
    if rows.empty:
        return f"{claim_id} was not run."
    out = []
    for _, r in rows.iterrows():
        half = 100 * (r["ci_high"] - r["ci_low"]) / 2
        units = _get(r, "n_units")
        units = int(units) if np.isfinite(units) else int(r["n_utts"])
        kind = "prompts" if _get(r, "resampling_unit", "utterance") == "prompt" else "utterances"
        factor = (half / goal_points) ** 2
        need = units * factor
        out.append(
            f"- {r['model']}, {r['dataset']}: {r['n_utts']} utterances of {units} independent {kind}, {r['n_ref_words']} "
            f"words; the 95 % interval of ΔWER is ±{half:.2f} points (goal ±{goal_points:g}). At this spread "
            f"±{goal_points:g} needs about {need:,.0f} independent {kind} ({factor:.1f}× these; about "
            f"{r['n_ref_words'] * factor:,.0f} words at these words per prompt, in new prompts, not more copies of these)."
        )
    return "\n".join(out)


def changed_markdown(claims: pd.DataFrame, previous: pd.DataFrame | None) -> str:
    """"Verdicts that changed": each deciding verdict against the previous claims table's, and why.

    The reasons are read from the two tables: a new expectation or measure, the resampling unit,
    a bound in place of a zero-width interval, or an interval that moved or widened.
    """
    if previous is None or previous.empty:
        return "No previous claims table was given (config `findings.previous`), so nothing to compare."
    new = claims[claims["decides"]].set_index(["claim", "model"])
    old = previous[previous["decides"].astype(str).str.lower() == "true"].set_index(["claim", "model"])
    lines, same = [], 0
    for key, row in new.iterrows():
        if key not in old.index:
            lines.append(f"- {key[0]} on {key[1]}: new, {row['verdict']}.")
            continue
        before = old.loc[key]
        if before["verdict"] == row["verdict"] and before["dataset"] == row["dataset"]:
            same += 1
            continue
        lines.append(f"- {key[0]} on {key[1]} ({row['dataset']}): {before['verdict']} → **{row['verdict']}** "
                     f"(adj. {_get(row, 'verdict_adjusted', '')}). " + _why(before, row))
    gone = [k for k in old.index if k not in new.index]
    lines += [f"- {k[0]} on {k[1]}: no longer evaluated (was {old.loc[k]['verdict']})." for k in gone]
    head = f"{len(lines)} deciding verdicts changed against the previous claims table; {same} stayed the same."
    return head + ("\n\n" + "\n".join(lines) if lines else "")


def _why(before: pd.Series, row: pd.Series) -> str:
    reasons = []
    if before["outcome"] != row["outcome"] or not np.isclose(float(before["threshold"]), float(row["threshold"])):
        reasons.append(f"the claim now expects {_expectation(row)} (was {_expectation(before)})")
    if _get(row, "measure", "raw") == "bounded":
        reasons.append(f"decided on the bounded measure ({_pts(row['effect_bounded'])} "
                       f"[{_pts(row['ci_low_bounded'])}, {_pts(row['ci_high_bounded'])}]; raw "
                       f"{_pts(row['effect_abs'])}, runaways {int(_get(row, 'n_runaway_variant', 0))}/"
                       f"{int(_get(row, 'n_runaway_reference', 0))})")
    if bool(_get(row, "ci_bound", False)):
        reasons.append("no prompt changed: the interval is the rule-of-three bound, not [0, 0]")
    if row["outcome"] == "ranks_damage" and np.isfinite(_get(row, "rho_variants")):
        reasons.append(f"decided over the variants (ρ {row['rho_variants']:+.2f}, permutation p {row['p_variants']:.3f}, "
                       f"{int(row['n_variants'])} variants)")
    if not reasons and row["outcome"] != "ranks_damage":
        width_old = 100 * (float(before["ci_high"]) - float(before["ci_low"]))
        width_new = 100 * (row["ci_high"] - row["ci_low"])
        reasons.append(f"prompts resampled ({_units(row)} of {int(row['n_utts'])} rows): the interval is "
                       f"[{_pts(row['ci_low'])}, {_pts(row['ci_high'])}], {width_new:.2f} points wide "
                       f"(was [{_pts(float(before['ci_low']))}, {_pts(float(before['ci_high']))}], {width_old:.2f})")
    return "; ".join(reasons) + "."


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
    claims: pd.DataFrame, wer: pd.DataFrame, timing: list[str], *, config_hash: str, config_name: str,
    previous: pd.DataFrame | None = None, policy: dict | None = None,
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
        "points on the same utterances, with 95 % paired bootstrap intervals that resample source prompts (a "
        "sentence's readings and degraded copies are one unit); a verdict is `supported` when the "
        "whole interval lies on the claimed side of the threshold, `contradicted` when it lies wholly on the "
        "other side, `inconclusive` otherwise. Claims that compare collapsed variants are decided on the bounded "
        "measure (each utterance's errors capped at its reference length; the raw ΔWER beside it), and where no "
        "prompt changed the interval is the rule-of-three bound.",
        "",
    ]
    if protocol is not None:
        parts += [
            f"Protocol: greedy decoding (beams {int(protocol['decode_num_beams'])}, batch {int(protocol['decode_batch_size'])}), "
            f"language `{protocol.get('decode_language', 'en')}`, normalizer `{protocol['normalizer']}`, float32 on CPU. "
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
            "",
        ]
    parts += ["## Verdicts", "", policy_markdown(claims, policy) if len(claims) else "", "",
              claims_markdown(claims, models) if len(claims) else "No claim was evaluated.", ""]
    parts += ["## Verdicts that changed", "", changed_markdown(claims, previous), ""]
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
