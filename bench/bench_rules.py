"""Peak memory and time per rule of a finished run, from the benchmark files Snakemake wrote.

    .venv/bin/python bench/bench_rules.py                         # the default run (make run)
    .venv/bin/python bench/bench_rules.py --configfile config/paper.yaml --results /scratch/results

Every rule declares a ``benchmark:`` file, so any run (local or SLURM) leaves one per job under
results/default/benchmarks/. This prints, per rule, the number of jobs, wall and CPU seconds, the largest
peak resident memory of its jobs and that peak as a fraction of the ``mem_mb`` the config requests,
which is how to size ``resources:`` for a cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asrprune import plan  # noqa: E402
from asrprune.config import validate_config  # noqa: E402
from asrprune.strict_yaml import load_yaml
from asrprune.usage import read_benchmarks, usage_by_rule  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", type=Path, default=REPO / "config.yaml", help="whose resources were requested")
    p.add_argument("--results", type=Path, default=REPO / "results")
    args = p.parse_args()

    config = validate_config(load_yaml(args.configfile))
    jobs = read_benchmarks(args.results / "benchmarks")
    requested = {rule: plan.rule_resources(config, rule).get("mem_mb") for rule in jobs["rule"].unique()}
    table = usage_by_rule(jobs, requested)
    print(f"Per rule, from {len(jobs)} benchmark files under {args.results / 'benchmarks'}:")
    print(f"{'rule':16s} {'jobs':>5s} {'wall s':>9s} {'max s':>7s} {'CPU s':>9s} {'peak RSS MB':>12s} {'mem_mb':>7s} {'peak/mem_mb':>12s}")
    for r in table.itertuples():
        print(f"{r.rule:16s} {r.jobs:5d} {r.wall_s_total:9.1f} {r.wall_s_max:7.1f} {r.cpu_s_total:9.1f} "
              f"{r.max_rss_mb:12.0f} {r.mem_mb_requested or float('nan'):7.0f} {r.rss_of_request:12.2f}")
    print(f"all jobs: wall {jobs['wall_s'].sum():.0f} s summed over jobs, CPU {jobs['cpu_s'].sum():.0f} s")


if __name__ == "__main__":
    main()
