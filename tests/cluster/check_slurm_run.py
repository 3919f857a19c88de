#!/usr/bin/env python3
"""Check a `snakemake --executor slurm --verbose` run against SLURM's accounting (sacct).

Used by tests/cluster/test_slurm.sh. From the snakemake log it takes the SLURM run ID (the
plugin's --job-name for every job), the `sbatch call:` lines and the `has been submitted with
SLURM jobid` lines; from `sacct --name <run id>` it takes each job's state and AllocTRES. It fails
(exit 1) unless
  - snakemake reported that all steps were done, at least one job went to SLURM, and sacct lists
    every submitted job;
  - every job is COMPLETED with exit code 0:0;
  - exactly the rules matching --gpu-rules were submitted with `--gpus=` and got `gres/gpu=N`
    in AllocTRES (N the count asked for), and no other job got a GPU.
It prints the sacct table, and the sbatch line of one job of each GPU rule.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import shlex
import subprocess
import sys
import time

FIELDS = ["JobID", "JobName", "Comment", "State", "ExitCode", "Elapsed", "AllocTRES", "NodeList"]


def rule_of(comment: str) -> str:
    name = comment[len("rule_"):] if comment.startswith("rule_") else comment
    return name.split("_wildcards_", 1)[0]


def parse_log(text: str):
    m = re.search(r"SLURM run ID: (\S+)", text)
    run_id = m.group(1) if m else None
    calls = {}  # comment -> list of sbatch calls
    for line in text.splitlines():
        i = line.find("sbatch call: ")
        if i < 0:
            continue
        call = line[i + len("sbatch call: "):].strip()
        try:
            words = shlex.split(call.split(" --wrap=", 1)[0])
        except ValueError:
            words = call.split()
        comment = words[words.index("--comment") + 1] if "--comment" in words else "?"
        calls.setdefault(comment, []).append(call)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    done = re.search(r"(\d+) of (\d+) steps \(100%\) done", text) is not None
    return run_id, calls, submitted, done


def gpus_in_call(call: str) -> int:
    m = re.search(r"--gpus=(?:[A-Za-z0-9_.]+:)?(\d+)", call)
    return int(m.group(1)) if m else 0


def gpus_in_tres(tres: str) -> int:
    m = re.search(r"gres/gpu=(\d+)", tres)
    return int(m.group(1)) if m else 0


def sacct(run_id: str) -> list[dict]:
    start = (dt.datetime.now() - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    out = subprocess.run(
        ["sacct", "--parsable2", "-X", "--noheader", "--allusers", "--starttime", start,
         "--name", run_id, "--format=" + ",".join(FIELDS)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [dict(zip(FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", required=True, help="snakemake's output (run with --verbose)")
    ap.add_argument("--gpu-rules", default="",
                    help="regex (re.fullmatch on the rule name): rules that must ask for GPUs; '' = none")
    ap.add_argument("--sacct-wait", type=float, default=20,
                    help="seconds to wait for sacct to list every submitted job")
    args = ap.parse_args()

    text = open(args.log, encoding="utf-8", errors="replace").read()
    run_id, calls, submitted, done = parse_log(text)
    errors: list[str] = []
    if not done:
        errors.append("snakemake did not report '(100%) done'")
    if run_id is None:
        print("FAIL: no 'SLURM run ID' in the snakemake log: was it run with --executor slurm?")
        return 1
    if not submitted:
        errors.append("no job was submitted to SLURM")

    deadline = time.monotonic() + args.sacct_wait
    while True:
        rows = sacct(run_id)
        ids = {r["JobID"] for r in rows}
        pending = [r for r in rows if r["State"] in ("PENDING", "RUNNING", "COMPLETING")]
        if (set(submitted) <= ids and not pending) or time.monotonic() > deadline:
            break
        time.sleep(1)

    gpu_re = re.compile(args.gpu_rules) if args.gpu_rules else None
    table = [["JobID", "Rule (comment)", "State", "ExitCode", "Elapsed", "sbatch --gpus", "AllocTRES"]]
    gpu_rules_seen: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: int(re.sub(r"\D.*", "", r["JobID"]) or 0)):
        comment = r["Comment"]
        rule = rule_of(comment)
        call_list = calls.get(comment, [])
        asked = max((gpus_in_call(c) for c in call_list), default=0)
        got = gpus_in_tres(r["AllocTRES"])
        table.append([r["JobID"], comment, r["State"], r["ExitCode"], r["Elapsed"],
                      str(asked) if call_list else "?", r["AllocTRES"]])
        if r["State"] != "COMPLETED" or r["ExitCode"] != "0:0":
            errors.append(f"job {r['JobID']} ({comment}): {r['State']} {r['ExitCode']}")
        if not call_list:
            errors.append(f"job {r['JobID']} ({comment}): no 'sbatch call' for it in the log")
        want_gpu = bool(gpu_re and gpu_re.fullmatch(rule))
        if want_gpu:
            if asked < 1:
                errors.append(f"job {r['JobID']} ({comment}): GPU rule submitted without --gpus")
            elif got != asked:
                errors.append(f"job {r['JobID']} ({comment}): asked --gpus={asked}, AllocTRES has gres/gpu={got}")
            gpu_rules_seen.setdefault(rule, call_list[0] if call_list else "")
        elif asked or got:
            errors.append(f"job {r['JobID']} ({comment}): not a GPU rule but asked {asked} / got {got} GPUs")
    missing = sorted(set(submitted) - {r["JobID"] for r in rows}, key=int)
    if missing:
        errors.append(f"sacct does not list submitted jobs {missing}")
    if gpu_re and not gpu_rules_seen:
        errors.append(f"no job of a rule matching --gpu-rules '{args.gpu_rules}' ran")

    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print(f"sacct, SLURM run ID {run_id}: {len(rows)} job(s), {len(submitted)} submitted")
    for row in table:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    for rule, call in gpu_rules_seen.items():
        print(f"sbatch line of GPU rule {rule} (--wrap elided):\n  {call.split(' --wrap=', 1)[0]}")
    if errors:
        print("FAIL:")
        for e in errors:
            print("  - " + e)
        return 1
    print(f"OK: {len(rows)} SLURM job(s) COMPLETED; GPU rules: {', '.join(sorted(gpu_rules_seen)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
