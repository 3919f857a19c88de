"""The tidy result table: one row per model × variant × test set, with intervals and deltas."""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from asrprune.settings import DecodeSettings
from asrprune.stats import bootstrap_ci, bounded_errors, corpus_rate, n_units, paired_effect
from asrprune.variants import BASELINE

# Columns that measure time: they differ between identical runs and are left out of
# determinism comparisons (README, "Output columns").
TIMING_COLUMNS = ["rtfx"]
VERSIONED_PACKAGES = ["torch", "transformers", "jiwer", "whisper-normalizer", "asrprune"]


def package_versions() -> str:
    """JSON of the versions that can change a number in the table."""
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return json.dumps(out, sort_keys=True)


def prompt_groups(scores: pd.DataFrame) -> np.ndarray | None:
    """The resampling unit of a score frame: its prompt ids, or None (every row its own unit) for score
    files written before prompt ids existed."""
    return scores["prompt_id"].astype(str).to_numpy() if "prompt_id" in scores else None


def resampling_unit(groups: np.ndarray | None) -> str:
    """`prompt` when the rows were resampled by prompt id, `utterance` when each row was its own unit."""
    return "utterance" if groups is None else "prompt"


def summarize(scores: pd.DataFrame, samples: int, seed: int) -> dict[str, Any]:
    """Corpus WER/CER, error counts, bootstrap interval (prompts resampled) and runaway counts of one score file."""
    word_errors = (scores["substitutions"] + scores["deletions"] + scores["insertions"]).to_numpy()
    n_words = scores["n_ref_words"].to_numpy()
    groups = prompt_groups(scores)
    low, high = bootstrap_ci(word_errors, n_words, samples, seed, groups=groups)
    calm = ~scores["runaway"].to_numpy()
    audio_s, decode_s = scores["duration_s"].sum(), scores["decode_s"].sum()
    return {
        "n_utts": len(scores),
        "n_ref_words": int(n_words.sum()),
        "wer": corpus_rate(word_errors, n_words),
        "cer": corpus_rate(scores["char_errors"].to_numpy(), scores["n_ref_chars"].to_numpy()),
        "substitutions": int(scores["substitutions"].sum()),
        "deletions": int(scores["deletions"].sum()),
        "insertions": int(scores["insertions"].sum()),
        "wer_basic": corpus_rate(scores["word_errors_basic"].to_numpy(), scores["n_ref_words_basic"].to_numpy()),
        "wer_ci_low": low,
        "wer_ci_high": high,
        "n_looping": int(scores["looping"].sum()),
        "n_hit_token_limit": int(scores["hit_token_limit"].sum()),
        "n_runaway": int((~calm).sum()),
        "n_non_english": int((scores["language"] != "en").sum()) if "language" in scores else 0,
        "wer_without_runaway": corpus_rate(word_errors[calm], n_words[calm]),
        "wer_bounded": corpus_rate(bounded_errors(word_errors, n_words), n_words),
        "resampling_unit": resampling_unit(groups),
        "n_units": n_units(groups, len(scores)),
        "rtfx": float(audio_s / decode_s) if decode_s > 0 else float("nan"),
    }


def _mask_columns(manifest: dict[str, Any]) -> dict[str, Any]:
    overall = manifest.get("overall", {})
    return {
        "sparsity_overall": float(overall.get("all_params", {}).get("sparsity", 0.0)),
        "sparsity_prunable": float(overall.get("prunable_matrices", {}).get("sparsity", 0.0)),
        "params_nonzero": int(manifest.get("params_nonzero", 0)),
        "params_total": int(manifest.get("params_total", 0)),
        "mask_bytes": int(manifest.get("mask_bytes", 0)),
    }


def requested_percent(manifest: dict[str, Any]) -> int:
    """The requested sparsity in percent; a schedule has none of its own, so its realized share of
    the prunable matrices stands in (README, `sparsity`)."""
    requested = manifest.get("sparsity_requested")
    if requested is None:
        requested = manifest.get("overall", {}).get("prunable_matrices", {}).get("sparsity", 0.0)
    return int(round(float(requested) * 100))


def build_table(
    frames: dict[tuple[str, str, str], pd.DataFrame],
    manifests: dict[tuple[str, str], dict[str, Any]],
    *,
    samples: int,
    seed: int,
    decoding: dict[str, Any],
    config_hash: str,
    predicted: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Aggregate every score file ((model, variant, dataset) -> its rows sorted by id) into the WER
    table, with deltas and paired p-values vs the baseline."""
    versions = package_versions()
    settings = DecodeSettings.from_config(decoding)
    rows = []
    for (model, variant, dataset), scores in sorted(frames.items()):
        manifest = manifests.get((model, variant), {})
        row: dict[str, Any] = {
            "model": model,
            "variant": variant,
            "method": manifest.get("method", BASELINE if variant == BASELINE else "unknown"),
            "target": manifest.get("target") or (f"pool:{manifest['matched_to']}" if manifest.get("matched_to") else "none"),
            "sparsity": requested_percent(manifest),
            "dataset": dataset,
        }
        row.update(summarize(scores, samples, seed))
        base = frames.get((model, BASELINE, dataset))
        if base is not None and variant != BASELINE:
            if list(base["id"]) != list(scores["id"]):
                raise ValueError(f"{model}/{variant}/{dataset}: utterance ids differ from the baseline's; cannot pair")
            errs = lambda f: (f["substitutions"] + f["deletions"] + f["insertions"]).to_numpy()  # noqa: E731
            base_wer = corpus_rate(errs(base), base["n_ref_words"].to_numpy())
            row["delta_wer_abs"] = row["wer"] - base_wer
            row["delta_wer_rel"] = row["delta_wer_abs"] / base_wer if base_wer else float("nan")
            effect = paired_effect(errs(scores), errs(base), scores["n_ref_words"].to_numpy(), samples=samples, seed=seed,
                                   groups=prompt_groups(base))
            row.update(p_value=effect.p, delta_ci_low=effect.low, delta_ci_high=effect.high, delta_ci_bound=effect.bound)
        else:
            zero = 0.0 if variant == BASELINE else np.nan
            row.update(delta_wer_abs=zero, delta_wer_rel=zero, p_value=np.nan, delta_ci_low=zero, delta_ci_high=zero,
                       delta_ci_bound=False)
        row.update(_mask_columns(manifest))
        row["predicted_damage"] = np.nan
        if predicted is not None and len(predicted):
            hit = predicted[(predicted["model"] == model) & (predicted["variant"] == variant)]
            if len(hit):
                row["predicted_damage"] = float(hit["predicted_damage"].iloc[0])
            elif variant == BASELINE:
                row["predicted_damage"] = 0.0
        row.update(
            normalizer="whisper_english",
            decode_language=str(settings.language),
            decode_backend=str(settings.backend),
            decode_num_beams=int(settings.num_beams),
            decode_batch_size=int(settings.batch_size),
            decode_max_tokens_per_second=float(settings.max_tokens_per_second),
            decode_max_tokens_margin=int(settings.max_tokens_margin),
            versions=versions,
            config_hash=config_hash,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def damage_correlation(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of predicted damage with measured ΔWER, per model and dataset."""
    from scipy.stats import spearmanr

    out = []
    pruned = table[(table["variant"] != BASELINE) & table["predicted_damage"].notna()]
    for (model, dataset), grp in pruned.groupby(["model", "dataset"], sort=True):
        if len(grp) >= 3 and grp["predicted_damage"].nunique() > 1 and grp["delta_wer_abs"].nunique() > 1:
            rho, p = spearmanr(grp["predicted_damage"], grp["delta_wer_abs"])
        else:
            rho, p = float("nan"), float("nan")
        out.append({"model": model, "dataset": dataset, "n_variants": len(grp), "spearman_rho": float(rho), "p_value": float(p)})
    return pd.DataFrame(out, columns=["model", "dataset", "n_variants", "spearman_rho", "p_value"])
