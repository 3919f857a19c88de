"""The report figures, drawn from a SYNTHETIC WER table (made-up numbers, never a result)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from asrprune.plots import (
    PlotInputError,
    plot_delta_bars,
    plot_predicted_vs_measured,
    plot_wer_vs_sparsity,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTTERS = [plot_wer_vs_sparsity, plot_delta_bars, plot_predicted_vs_measured]


def synthetic_wer_table(models=("tiny.en",), datasets=("ivr", "tts_clean", "tts_noisy"), seed=0) -> pd.DataFrame:
    """SYNTHETIC: a WER table with the real columns and invented numbers, for plotting tests only."""
    rng = np.random.default_rng(seed)
    grid = [("baseline", "none", 0)]
    grid += [(m, t, s) for m, t in [("magnitude", "dec_self_attn"), ("magnitude", "enc_ffn"), ("allocate", "all")] for s in (20, 30, 50)]
    grid += [("schedule", "authors40", 40)]
    rows = []
    for model in models:
        for dataset in datasets:
            base_wer = 0.08 + 0.1 * rng.random()
            for method, target, sparsity in grid:
                if method == "baseline":
                    variant = "baseline"
                elif method == "schedule":
                    variant = f"schedule-{target}"
                else:
                    variant = f"{method}-{target}-s{sparsity}"
                wer = base_wer * (1 + (sparsity / 50) ** 3 * (3 if target == "enc_ffn" else 1)) + 0.005 * rng.random()
                rows.append(
                    {
                        "model": model,
                        "variant": variant,
                        "method": method,
                        "target": target,
                        "sparsity": sparsity,
                        "sparsity_overall": sparsity / 250,  # one component is a fraction of the model
                        "dataset": dataset,
                        "n_utts": 48,
                        "wer": wer,
                        "wer_ci_low": wer * 0.8,
                        "wer_ci_high": wer * 1.25,
                        "delta_wer_abs": wer - base_wer if method != "baseline" else 0.0,
                        "p_value": np.nan if method == "baseline" else (0.01 if sparsity >= 30 else 0.4),
                        "predicted_damage": 0.0 if method == "baseline" else 10 ** (sparsity / 20) * (3 if target == "enc_ffn" else 1),
                        "normalizer": "whisper_english",
                    }
                )
    return pd.DataFrame(rows)


def assert_png(path, min_size=(400, 200), min_bytes=5_000):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path} is not a PNG"
    assert min_bytes < len(data) < 5_000_000, f"{path}: {len(data)} bytes"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1], img.size
        assert img.size[0] <= 6000 and img.size[1] <= 8000, img.size
        # not a blank canvas: more than one colour
        assert len(img.convert("RGB").getcolors(maxcolors=1_000_000) or range(2)) > 1


@pytest.mark.parametrize("plotter", PLOTTERS, ids=lambda f: f.__name__)
def test_each_plot_is_a_valid_png(tmp_path, plotter):
    out = plotter(synthetic_wer_table(), tmp_path / "sub" / "plot.png")
    assert out == tmp_path / "sub" / "plot.png"
    assert_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["plot.png"], "no temporary file left behind"


@pytest.mark.parametrize("plotter", PLOTTERS, ids=lambda f: f.__name__)
def test_the_same_table_gives_the_same_bytes(tmp_path, plotter):
    table = synthetic_wer_table()
    a, b = plotter(table, tmp_path / "a.png"), plotter(table, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    assert b"Matplotlib" not in a.read_bytes(), "no software version in the PNG metadata"


@pytest.mark.parametrize(
    ("plotter", "column"),
    [
        (plot_wer_vs_sparsity, "wer_ci_low"),
        (plot_wer_vs_sparsity, "sparsity_overall"),
        (plot_delta_bars, "p_value"),
        (plot_delta_bars, "delta_wer_abs"),
        (plot_predicted_vs_measured, "predicted_damage"),
    ],
)
def test_a_missing_column_is_a_clear_error(tmp_path, plotter, column):
    table = synthetic_wer_table().drop(columns=[column])
    with pytest.raises(PlotInputError, match=rf"{plotter.__name__}.*lacks required column.*'{column}'"):
        plotter(table, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_not_a_dataframe_is_a_clear_error(tmp_path):
    with pytest.raises(PlotInputError, match="expected a pandas DataFrame"):
        plot_wer_vs_sparsity({"wer": [0.1]}, tmp_path / "x.png")


def test_a_bad_correlation_table_is_a_clear_error(tmp_path):
    with pytest.raises(PlotInputError, match="correlation table.*spearman_rho"):
        plot_predicted_vs_measured(synthetic_wer_table(), tmp_path / "x.png", pd.DataFrame({"model": [], "dataset": []}))


@pytest.mark.parametrize("plotter", PLOTTERS, ids=lambda f: f.__name__)
def test_few_variants_and_nans(tmp_path, plotter):
    """One pruned variant, no bootstrap (NaN intervals and p), one NaN WER, no predicted damage."""
    table = synthetic_wer_table()
    table = table[table["variant"].isin(["baseline", "magnitude-enc_ffn-s50"])].copy()
    table[["wer_ci_low", "wer_ci_high", "p_value", "predicted_damage"]] = np.nan
    table.loc[table.index[-1], ["wer", "delta_wer_abs"]] = np.nan
    assert_png(plotter(table, tmp_path / "few.png"), min_size=(300, 100), min_bytes=2_000)


@pytest.mark.parametrize("plotter", PLOTTERS, ids=lambda f: f.__name__)
def test_only_the_baseline(tmp_path, plotter):
    table = synthetic_wer_table(datasets=("ivr",))
    assert_png(plotter(table[table["variant"] == "baseline"], tmp_path / "base.png"), min_size=(300, 100), min_bytes=2_000)


@pytest.mark.parametrize("plotter", PLOTTERS, ids=lambda f: f.__name__)
def test_an_empty_table(tmp_path, plotter):
    table = synthetic_wer_table().iloc[0:0]
    assert_png(plotter(table, tmp_path / "empty.png"), min_size=(300, 100), min_bytes=2_000)


def test_several_models_share_one_figure(tmp_path):
    table = synthetic_wer_table(models=("tiny.en", "base.en"))
    one = plot_wer_vs_sparsity(synthetic_wer_table(), tmp_path / "one.png")
    two = plot_wer_vs_sparsity(table, tmp_path / "two.png")
    with Image.open(one) as a, Image.open(two) as b:
        assert b.size[1] > a.size[1], "a second model adds a row of panels"
    for plotter in PLOTTERS[1:]:
        assert_png(plotter(table, tmp_path / f"{plotter.__name__}.png"))


def test_predicted_damage_of_zero_is_left_off_the_log_axis(tmp_path):
    table = synthetic_wer_table()
    table.loc[table["variant"] == "allocate-all-s20", "predicted_damage"] = 0.0
    assert_png(plot_predicted_vs_measured(table, tmp_path / "p.png"))


def test_plot_all_reads_the_table_files(tmp_path):
    from asrprune.stages.plots import plot_all
    from asrprune.tables import damage_correlation

    table = synthetic_wer_table()
    table.to_parquet(tmp_path / "wer.parquet")
    damage_correlation(table).to_parquet(tmp_path / "corr.parquet")
    outs = plot_all(tmp_path / "wer.parquet", tmp_path / "corr.parquet", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png")
    assert [p.name for p in outs] == ["a.png", "b.png", "c.png"]
    for p in outs:
        assert_png(p)
