"""Benchmark: the per-utterance Fisher step against a plain batched forward+backward on the same utterances.

    .venv/bin/python bench/bench_fisher.py --n-utts 8 --batch-size 4 [--methods loop,vmap] [--reps 3]

Prints, from one run: seconds of a plain batched forward+backward (sum of the sequence NLLs over
all utterances, one backward per batch), seconds of the per-utterance Fisher step
(`asrprune.sensitivity.per_utterance_fisher_and_taylor`, which also squares and accumulates), their
ratio, and peak memory.

Timing: the steps alternate within one process (rep 1: batched, loop, ...; rep 2: ...), so load from
other processes hits them alike; min and median over reps of both wall-clock and process CPU time are
printed. CPU time is the steadier figure on a shared machine.
Memory: each step also runs once in a fresh subprocess that reports its resident set before the step
and the peak resident set during it (VmHWM, reset just before the step; whole process: Python, torch,
model, inputs, activations, gradients, accumulators). tracemalloc would not see torch's allocations.

Model: `--model-dir` (default results/models/tiny.en) when it exists; otherwise a RANDOM-INIT model
with tiny.en's shapes (d_model 384, 4+4 layers, 6 heads, ffn 1536, vocab 51864), for timing only.
Inputs: a calibration parquet (`--calib`, default results/data/calib.parquet) when the real model and
the file exist; otherwise synthetic log-Mel features and random label sequences of 10-40 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asrprune.batches import Batch, encode_targets  # noqa: E402
from asrprune.sensitivity import per_utterance_fisher_and_taylor, sequence_nll  # noqa: E402


class _RandomTokens:
    """Stands in for a tokenizer: a seeded random token sequence per text (the text is its length)."""

    def __init__(self, seed: int, vocab_hi: int):
        self.g, self.hi = torch.Generator().manual_seed(seed), vocab_hi

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return torch.randint(0, self.hi, (len(text.strip()),), generator=self.g).tolist()


def tiny_en_shaped():
    """Random-init Whisper with tiny.en's shapes and special ids (timing only, never a result)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=51864, num_mel_bins=80, d_model=384, encoder_layers=4, decoder_layers=4,
        encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
        max_source_positions=1500, max_target_positions=448, decoder_start_token_id=50257,
        eos_token_id=50256, pad_token_id=50256, bos_token_id=50256,
    )
    return WhisperForConditionalGeneration(cfg).eval()


def build(args) -> tuple[torch.nn.Module, list[Batch], str]:
    """Model and batches, deterministic, plus a line saying what they are."""
    model_dir, calib = Path(args.model_dir), Path(args.calib)
    if (model_dir / "config.json").is_file():
        from asrprune.models.load import generation_prompt_ids, load_model

        model, processor = load_model(model_dir)
        prompt, eos = generation_prompt_ids(model), int(model.config.eos_token_id)
        what = f"model: {model_dir} (real weights)"
        if calib.is_file():
            from asrprune.batches import iter_batches
            from asrprune.io import read_split
            from asrprune.batches import select_utterances

            df = select_utterances(read_split(calib), args.n_utts, 0)
            batches = list(iter_batches(df, processor, args.batch_size, prompt_ids=prompt, eos_id=eos))
            return model, batches, what + f"; inputs: {len(df)} utterances of {calib}"
    else:
        model, prompt, eos = tiny_en_shaped(), [50257, 50362], 50256
        what = "model: RANDOM-INIT with tiny.en's shapes (timing only)"
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(10, 41, (args.n_utts,), generator=g).tolist()
    tok = _RandomTokens(2, 50000)
    batches = []
    for s in range(0, args.n_utts, args.batch_size):
        n = len(lengths[s : s + args.batch_size])
        inputs, labels = encode_targets(tok, ["x" * k for k in lengths[s : s + args.batch_size]], prompt, eos)
        feats = torch.randn(n, model.config.num_mel_bins, 3000, generator=g).clamp(-1.5, 1.5)
        batches.append(Batch([f"syn{s + i}" for i in range(n)], [""] * n, [10.0] * n, feats, inputs, labels))
    return model, batches, what + f"; inputs: {args.n_utts} synthetic log-Mel features, labels of 10-40 random tokens"


def batched_step(model: torch.nn.Module, batches: list[Batch]) -> None:
    """The reference: one forward+backward per batch of the summed sequence NLLs, grads into .grad."""
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    for b in batches:
        logits = model(input_features=b.input_features, decoder_input_ids=b.decoder_input_ids).logits
        sequence_nll(logits, b.labels).sum().backward()
    for p in params:
        p.grad = None


def fisher_step(model: torch.nn.Module, batches: list[Batch], method: str) -> None:
    per_utterance_fisher_and_taylor(model, batches, method=method, chunk_size=2, progress=False)


def run_step(name: str, model, batches) -> None:
    if name == "batched":
        batched_step(model, batches)
    else:
        fisher_step(model, batches, name)


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def worker(args) -> None:
    """Subprocess: resident memory before one step and its peak during the step, as JSON on stdout.

    The peak is VmHWM after resetting it through /proc/self/clear_refs (Linux >= 4.0): ru_maxrss would
    carry the parent's peak across fork+exec and hide the step's own.
    """
    model, batches, _ = build(args)
    before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS high-water mark
        how = "VmHWM"
    except OSError:
        how = "ru_maxrss (includes loading; peak not reset)"
    run_step(args.worker, model, batches)
    peak = _status_kib("VmHWM") if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kib": before or 0, "peak_kib": peak, "how": how}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-utts", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--methods", default="loop", help="comma-separated: loop, vmap")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--model-dir", default=str(REPO / "results/models/tiny.en"))
    ap.add_argument("--calib", default=str(REPO / "results/data/calib.parquet"))
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess memory measurement")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="There is a performance drop")
    if args.worker:
        return worker(args)

    model, batches, what = build(args)
    steps = ["batched", *[m.strip() for m in args.methods.split(",") if m.strip()]]
    n_utts = sum(b.input_features.shape[0] for b in batches)
    n_tok = sum(int((b.labels != -100).sum()) for b in batches)
    print(what)
    print(f"utterances {n_utts}, label tokens {n_tok}, batch size {args.batch_size}, torch threads {args.threads}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, torch {torch.__version__}")
    run_step("batched", model, batches[:1])  # warm-up: allocator, kernels
    wall = {s: [] for s in steps}
    cpu = {s: [] for s in steps}
    for _ in range(args.reps):
        for s in steps:
            t0, c0 = time.perf_counter(), time.process_time()
            run_step(s, model, batches)
            wall[s].append(time.perf_counter() - t0)
            cpu[s].append(time.process_time() - c0)
    print(f"\n{'step':<10} {'wall min':>9} {'wall med':>9} {'cpu min':>9} {'cpu med':>9} {'ratio wall':>11} {'ratio cpu':>10}")
    for s in steps:
        rw, rc = min(wall[s]) / min(wall["batched"]), min(cpu[s]) / min(cpu["batched"])
        print(f"{s:<10} {min(wall[s]):9.2f} {statistics.median(wall[s]):9.2f} {min(cpu[s]):9.2f} "
              f"{statistics.median(cpu[s]):9.2f} {rw:11.3f} {rc:10.3f}")
    print("(seconds for all utterances; ratio = min(step) / min(batched forward+backward))")
    if args.no_memory:
        return
    print(f"\n{'step':<10} {'RSS before MiB':>15} {'peak MiB':>9} {'step adds MiB':>14}   (fresh subprocess each)")
    for s in steps:
        cmd = [sys.executable, __file__, "--worker", s, "--n-utts", str(args.n_utts), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads), "--model-dir", args.model_dir, "--calib", args.calib]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{s:<10} {rss['before_kib'] / 1024:15.0f} {rss['peak_kib'] / 1024:9.0f} "
              f"{(rss['peak_kib'] - rss['before_kib']) / 1024:14.0f}   ({rss['how']})")


if __name__ == "__main__":
    main()
