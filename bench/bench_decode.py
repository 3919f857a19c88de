"""Decoding speed, measured in one run on the same utterances, as ratios against the transformers pipeline.

    .venv/bin/python bench/bench_decode.py                 # the README numbers (~10 min on 2 shared cores)
    .venv/bin/python bench/bench_decode.py --rounds 1 --grid-utts 8 --skip-memory   # a quick look

What it prints (RTFx = seconds of audio per second of processing, as the Open ASR Leaderboard; every
method is timed from the FLAC bytes to the text: audio decoding, log-Mel features, model, detokenizing):

1. Speed on N real utterances (default 64 `ivr` prompts; built into results/bench/data/ if the
   workflow's ivr set is smaller), greedy, batch 8, T threads: the transformers ASR pipeline (the
   baseline), the encoder alone (audio, features and encoder with no decoding at all: no dense
   decode can beat it, so it bounds what any decoder-side speed-up can reach),
   `model.generate` on batched features, the fast loop, and variants decoded from the
   encoder cache (a decoder-only variant: no encoder at all; an encoder variant pruned in its last
   half: resumes at the middle). Every method decodes every batch of 8 in turn (the order rotating
   from batch to batch), `--rounds` times; each batch counts with its best time over the rounds
   (a load spike on the shared machine only ever adds time), summed over the batches.
2. The default grid's decoding stage (every variant x test set of config.yaml, `--grid-utts` per set):
   every job decoded by the pipeline, by the workflow's path before this change (`generate`, no
   cache) and by the workflow's path now (fast loop + encoder cache starting empty), batch by batch
   with the three paths rotating.
3. Peak memory (the process's VmHWM, its maxrss) and wall time of a decode job subprocess
   (asrprune.stages.decode.decode_variant).
4. Mask-set bytes relative to the full checkpoint, and the encoder cache's disk cost.

Transcripts are compared wherever two methods decode the same model: the fast loop and the cache
must give exactly the `generate` / uncached transcripts.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from asrprune.audio import decode_audio  # noqa: E402
from asrprune.io import read_split  # noqa: E402
from asrprune.batches import batch_chunks  # noqa: E402
from asrprune.decode import decode_frame  # noqa: E402
from asrprune.settings import DecodeSettings, token_limit  # noqa: E402
from asrprune.encoder_states import CacheSpec  # noqa: E402
from asrprune.encoder_cache import EncoderCache, changed_tensors, resume_boundary, target_boundaries  # noqa: E402
from asrprune.io import sha256_file  # noqa: E402
from asrprune.models.load import generation_prompt_ids, load_model  # noqa: E402

log = logging.getLogger("bench_decode")


# ------------------------------------------------------------------------------------------------
# Inputs


def bench_data(path: Path, n: int) -> Path:
    """`path` if it has at least n utterances, else an `ivr` set of n built into results/bench/data/."""
    if path.is_file() and len(pd.read_parquet(path, columns=["id"])) >= n:
        return path
    out = REPO / "results" / "bench" / "data" / f"ivr-{n}.parquet"
    if not out.is_file():
        from asrprune.datasets import build_dataset

        print(f"building {out} ({n} real ivr prompts)", flush=True)
        build_dataset("ivr", {"source": "offline", "kind": "ivr", "max_utts": n}, out)
    return out


def variant_model(base, model_dir: Path, variant: str, base_manifest: dict):
    """(model copy with the variant's masks, changed tensor names); masks from results/default/masks or computed here."""
    from asrprune.masks import apply_masks, check_base, load_mask_set
    from asrprune.methods import compute_masks
    from asrprune.variants import Variant

    model = copy.deepcopy(base)
    mask_dir = REPO / "results" / "masks" / base_manifest["name"] / variant
    if (mask_dir / "manifest.json").is_file():
        masks, manifest = load_mask_set(mask_dir)
        check_base(manifest, base_manifest)
    else:
        spec = Variant.parse(variant)
        if spec.method == "baseline":
            return model, []
        masks = compute_masks(model, spec.method, spec.target, spec.sparsity)
    apply_masks(model, masks)
    return model, changed_tensors(masks)


# ------------------------------------------------------------------------------------------------
# Methods: each returns hypotheses by id


def run_pipeline(asr, df: pd.DataFrame, settings: DecodeSettings, ceiling: int) -> dict[str, str]:
    """The transformers ASR pipeline, greedy, same batches (longest first) and the set's largest token limit."""
    order = [row for chunk in batch_chunks(df, settings.batch_size) for _, row in chunk.iterrows()]
    audios = [{"raw": decode_audio(r["audio"], name=r["id"]), "sampling_rate": 16000} for r in order]
    max_new = max(token_limit(float(r["duration_s"]), settings, ceiling) for r in order)
    out = asr(audios, batch_size=settings.batch_size, generate_kwargs={"num_beams": 1, "do_sample": False, "max_new_tokens": max_new})
    return {r["id"]: o["text"].strip() for r, o in zip(order, out)}


def run_frame(model, processor, prompt, df, settings, cache=None) -> dict[str, str]:
    out = decode_frame(model, processor, prompt, df, settings, cache=cache)
    return dict(zip(out["id"], out["hypothesis"]))


def make_pipeline(model, processor, settings):
    from transformers import pipeline

    return pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        batch_size=settings.batch_size,
        device="cpu",
    )


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def agree(a: dict[str, str], b: dict[str, str]) -> str:
    same = sum(a[k] == b.get(k) for k in a)
    return f"{same}/{len(a)}"


# ------------------------------------------------------------------------------------------------
# 1. Speed on the same utterances


def speed_section(args, base, processor, base_manifest, df, settings) -> list[dict]:
    """Every method on every batch of `df`, methods rotating per batch, so load changes hit all alike."""
    prompt = generation_prompt_ids(base)
    ceiling = base.config.max_target_positions - len(prompt)
    n_layers = base.config.encoder_layers
    dataset_sha = sha256_file(args.data_used)
    dec_model, dec_changed = variant_model(base, args.model, args.decoder_variant, base_manifest)
    enc_model, enc_changed = variant_model(base, args.model, args.encoder_variant, base_manifest)
    k_dec, k_enc = resume_boundary(dec_changed, n_layers), resume_boundary(enc_changed, n_layers)
    cache_root = Path(tempfile.mkdtemp(prefix="bench-encoder-cache-"))
    # The decoding batches of the whole set; each method decodes them one at a time (one batch each:
    # the same batches as decoding the set at once). Cache entries are per batch here.
    chunks = batch_chunks(df, settings.batch_size)

    def spec(k, ci, root=cache_root):
        return CacheSpec(EncoderCache.from_mb(root, args.cache_mb), base_manifest["weights_sha256"], f"{dataset_sha}:{ci}", k)

    asr = make_pipeline(base, processor, settings)
    generate = replace(settings, backend="generate")

    def fresh_write(chunk, ci):
        root = Path(tempfile.mkdtemp(prefix="bench-encoder-cache-miss-"))
        try:
            return run_frame(base, processor, prompt, chunk, settings, spec(n_layers, ci, root))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def encoder_only(chunk, ci):
        from asrprune.batches import chunk_features
        from asrprune.encoder import encode

        with torch.inference_mode():
            encode(base, chunk_features(chunk, processor))
        return {}

    methods = {
        "pipeline": ("transformers pipeline (baseline)", lambda c, ci: run_pipeline(asr, c, settings, ceiling)),
        "encoder": ("audio + features + encoder, no decoder (the ceiling)", encoder_only),
        "generate": ("model.generate, batched features", lambda c, ci: run_frame(base, processor, prompt, c, generate)),
        "fast": ("fast loop", lambda c, ci: run_frame(base, processor, prompt, c, settings)),
        "fast_write": ("fast loop + cache miss (computes, writes)", fresh_write),
        "dec_nocache": (f"{args.decoder_variant}, no cache", lambda c, ci: run_frame(dec_model, processor, prompt, c, settings)),
        "dec_cached": (f"{args.decoder_variant}, cached encoder (boundary {k_dec})",
                       lambda c, ci: run_frame(dec_model, processor, prompt, c, settings, spec(k_dec, ci))),
        "enc_nocache": (f"{args.encoder_variant}, no cache", lambda c, ci: run_frame(enc_model, processor, prompt, c, settings)),
        "enc_cached": (f"{args.encoder_variant}, resumes at boundary {k_enc}",
                       lambda c, ci: run_frame(enc_model, processor, prompt, c, settings, spec(k_enc, ci))),
    }
    # Fill the entries the cached methods read (untimed; what a miss costs is `fast_write`).
    for ci, chunk in enumerate(chunks):
        run_frame(base, processor, prompt, chunk, settings, spec(k_dec, ci))
        run_frame(enc_model, processor, prompt, chunk, settings, spec(k_enc, ci))

    names = list(methods)
    best = {m: [float("inf")] * len(chunks) for m in names}  # per batch: the best of the rounds
    hyps: dict[str, dict[str, str]] = {m: {} for m in names}
    turn = 0
    for r in range(args.rounds):
        for ci, chunk in enumerate(chunks):
            order = names[turn % len(names) :] + names[: turn % len(names)]
            turn += 1
            for m in order:
                s, h = timed(lambda: methods[m][1](chunk, ci))
                best[m][ci] = min(best[m][ci], s)
                if r == 0:
                    hyps[m].update(h)
        print(f"  round {r + 1}: " + ", ".join(f"{m} {sum(best[m]):.1f}" for m in names) + " s (best so far)", flush=True)
    shutil.rmtree(cache_root, ignore_errors=True)
    seconds = {m: sum(best[m]) for m in names}

    audio = float(df["duration_s"].sum())
    same = {
        "pipeline": agree(hyps["pipeline"], hyps["generate"]),
        "encoder": "-",
        "generate": "reference",
        "fast": agree(hyps["fast"], hyps["generate"]),
        "fast_write": agree(hyps["fast_write"], hyps["generate"]),
        "dec_nocache": "reference",
        "dec_cached": agree(hyps["dec_cached"], hyps["dec_nocache"]),
        "enc_nocache": "reference",
        "enc_cached": agree(hyps["enc_cached"], hyps["enc_nocache"]),
    }
    rows = []
    for m in names:
        rtfx = audio / seconds[m]
        rows.append({"method": methods[m][0], "key": m, "seconds": seconds[m], "rtfx": rtfx, "identical": same[m]})
    ref = next(r["rtfx"] for r in rows if r["key"] == "pipeline")
    gen = next(r["rtfx"] for r in rows if r["key"] == "generate")
    for r in rows:
        r["x_pipeline"] = r["rtfx"] / ref
        r["x_generate"] = r["rtfx"] / gen
    return rows


def replace(settings: DecodeSettings, **kw) -> DecodeSettings:
    from dataclasses import replace as dc_replace

    return dc_replace(settings, **kw)


# ------------------------------------------------------------------------------------------------
# 2. The default grid's decoding stage


def grid_section(args, base, processor, base_manifest, settings) -> dict:
    """Every job of the grid's decoding stage by three paths, batch by batch, the order rotating.

    Paths: the transformers pipeline; the workflow before this change (`generate`, no cache); the
    workflow now (fast loop + encoder cache, the cache starting empty, jobs in the grid's order so
    the first variant of each prefix writes what the others read). Cache entries are per batch here
    (the batches are those of each whole job). The stage is replayed `--grid-rounds` times, each
    time from an empty cache, and each (job batch, path) counts with its best time.
    """
    from asrprune import plan
    from asrprune.config import validate_config
    from asrprune.strict_yaml import load_yaml

    config = validate_config(load_yaml(args.config))
    prompt = generation_prompt_ids(base)
    ceiling = base.config.max_target_positions - len(prompt)
    n_layers = base.config.encoder_layers
    sets = []
    for name in plan.evaluation_sets(config):
        path = REPO / "results" / "data" / f"{name}.parquet"
        if not path.is_file():
            print(f"  (skipping {name}: {path} not built)")
            continue
        df = read_split(path)
        if args.grid_utts:
            df = df.head(args.grid_utts)
        sets.append((name, df, sha256_file(path)))
    variants = [v.id for v in plan.variants(config)]
    also_store = target_boundaries(base, plan.grid_targets(config))  # as scripts/decode.py
    generate = replace(settings, backend="generate")
    names = ["pipeline", "generate", "workflow"]
    models = {}
    for vid in variants:
        model, changed = variant_model(base, args.model, vid, base_manifest)
        models[vid] = (model, resume_boundary(changed, n_layers), make_pipeline(model, processor, settings))
    best: dict[tuple, float] = {}
    same = dict.fromkeys(names, 0)
    cached_utts = utts = 0
    audio, turn, disk = 0.0, 0, 0
    for r in range(args.grid_rounds):
        # Each pass replays the stage from an empty cache, variants in the grid's order.
        cache_root = Path(tempfile.mkdtemp(prefix="bench-grid-cache-"))
        cache = EncoderCache.from_mb(cache_root, args.cache_mb)
        for vid in variants:
            model, k, asr = models[vid]
            for name, df, sha in sets:
                for ci, chunk in enumerate(batch_chunks(df, settings.batch_size)):
                    spec = CacheSpec(cache, base_manifest["weights_sha256"], f"{sha}:{ci}", k, also_store)
                    paths = {
                        "pipeline": lambda: run_pipeline(asr, chunk, settings, ceiling),
                        "generate": lambda: decode_frame(model, processor, prompt, chunk, generate),
                        "workflow": lambda: decode_frame(model, processor, prompt, chunk, settings, cache=spec),
                    }
                    order = names[turn % 3 :] + names[: turn % 3]
                    turn += 1
                    out = {}
                    for label in order:
                        s, out[label] = timed(paths[label])
                        key = (vid, name, ci, label)
                        best[key] = min(best.get(key, float("inf")), s)
                    if r == 0:
                        ref = dict(zip(out["generate"]["id"], out["generate"]["hypothesis"]))
                        mine = dict(zip(out["workflow"]["id"], out["workflow"]["hypothesis"]))
                        same["workflow"] += sum(mine[i] == ref[i] for i in ref)
                        same["pipeline"] += sum(out["pipeline"][i] == ref[i] for i in ref)
                        cached_utts += int(out["workflow"]["encoder_cached"].sum())
                        utts += len(chunk)
                        audio += float(chunk["duration_s"].sum())
            v = {label: sum(t for key, t in best.items() if key[0] == vid and key[3] == label) for label in names}
            print(f"  pass {r + 1}, {vid:30s} boundary {k}: pipeline {v['pipeline']:6.1f} s, generate {v['generate']:6.1f} s, "
                  f"workflow {v['workflow']:6.1f} s (best so far)", flush=True)
        disk = cache.usage_bytes()
        shutil.rmtree(cache_root, ignore_errors=True)
    total = {label: sum(t for key, t in best.items() if key[3] == label) for label in names}
    by_variant = {vid: {label: sum(t for key, t in best.items() if key[0] == vid and key[3] == label) for label in names}
                  for vid in variants}
    jobs = len(variants) * len(sets)
    return {
        "jobs": jobs,
        "variants": variants,
        "sets": [s[0] for s in sets],
        "utts_per_set": args.grid_utts or "all",
        "audio_s": audio,
        "seconds": total,
        "by_variant": by_variant,
        "speedup_vs_pipeline": total["pipeline"] / total["workflow"],
        "speedup_vs_generate": total["generate"] / total["workflow"],
        "identical_to_generate": {k: f"{v}/{utts}" for k, v in same.items() if k != "generate"},
        "encoder_cached_utts": f"{cached_utts}/{utts}",
        "cache_bytes": disk,
    }


# ------------------------------------------------------------------------------------------------
# 3. Peak memory of a decode job


JOB = """
import sys, time, torch
sys.path.insert(0, {repo!r})
torch.set_num_threads({threads})
from asrprune.stages.decode import decode_variant
decode_variant({model!r}, {masks!r}, {data!r}, {out!r}, {decoding!r}, {execution!r}, cache_dir={cache!r})
# VmHWM: this process's own peak (ru_maxrss of a child started by a big parent counts the parent's pages)
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0])
"""


def run_job(model_dir, mask_dir, data, decoding, execution, cache_dir, threads) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one decode job in its own process."""
    out = Path(tempfile.mkdtemp(prefix="bench-job-")) / "out.parquet"
    code = JOB.format(repo=str(REPO), threads=threads, model=str(model_dir), masks=str(mask_dir), data=str(data),
                      out=str(out), decoding=decoding, execution=execution, cache=str(cache_dir) if cache_dir else None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"decode job failed ({proc.returncode}): {proc.stderr[-2000:]}")
    shutil.rmtree(out.parent, ignore_errors=True)
    return wall, int(proc.stdout.split()[-1]) / 1024


def memory_section(args, base_manifest, settings) -> list[dict]:
    from asrprune.io import write_parquet

    model_dir = args.model
    masks_root = REPO / "results" / "masks" / base_manifest["name"]
    baseline, dec_variant = masks_root / "baseline", masks_root / args.decoder_variant
    if not (baseline / "manifest.json").is_file() or not (dec_variant / "manifest.json").is_file():
        print(f"  (skipping: needs mask sets {baseline} and {dec_variant}; snakemake builds them)")
        return []
    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    data = tmp / "subset.parquet"
    write_parquet(read_split(args.data_used).head(args.memory_utts), data)
    cache = tmp / "cache"
    base_decoding = {"batch_size": settings.batch_size}
    cached, uncached = {"encoder_cache_mb": args.cache_mb}, {"encoder_cache": False}
    cases = [
        ("generate backend, no cache", baseline, {**base_decoding, "backend": "generate"}, uncached, None),
        ("fast, no cache", baseline, base_decoding, uncached, None),
        ("fast, cache miss (writes)", baseline, base_decoding, cached, cache),
        (f"fast, cache hit ({args.decoder_variant})", dec_variant, base_decoding, cached, cache),
    ]
    rows = []
    for label, masks, decoding, execution, cache_dir in cases:
        wall, rss = run_job(model_dir, masks, data, decoding, execution, cache_dir, args.threads)
        rows.append({"job": label, "wall_s": wall, "maxrss_mb": rss})
        print(f"  {label:45s} {wall:6.1f} s  {rss:7.0f} MB", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


# ------------------------------------------------------------------------------------------------
# 4. Mask-set sizes


def mask_sizes(base_manifest, model_dir: Path) -> list[dict]:
    ckpt = (model_dir / "model.safetensors").stat().st_size
    rows = []
    for d in sorted((REPO / "results" / "masks" / base_manifest["name"]).glob("*/manifest.json")):
        m = json.loads(d.read_text())
        size = m.get("mask_bytes") or (d.parent / "masks.safetensors").stat().st_size
        rows.append({"variant": d.parent.name, "mask_bytes": size, "of_checkpoint": size / ckpt, "checkpoint_bytes": ckpt})
    return rows


# ------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "results" / "models" / "tiny.en")
    p.add_argument("--data", type=Path, default=REPO / "results" / "data" / "ivr.parquet")
    p.add_argument("--n", type=int, default=64, help="utterances for the speed table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--decoder-variant", default="magnitude-dec_self_attn-s50")
    p.add_argument("--encoder-variant", default="magnitude-enc_ffn.last_half-s50")
    p.add_argument("--config", type=Path, default=REPO / "config.yaml", help="whose grid section 2 decodes")
    p.add_argument("--grid-utts", type=int, default=16, help="utterances per test set in section 2 (0: all)")
    p.add_argument("--grid-rounds", type=int, default=2, help="passes over the grid (each batch counts with its best)")
    p.add_argument("--memory-utts", type=int, default=16)
    p.add_argument("--cache-mb", type=float, default=4096)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-grid", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    base, processor = load_model(args.model)
    base_manifest = json.loads((args.model / "manifest.json").read_text())
    args.data_used = bench_data(args.data, args.n)
    df = read_split(args.data_used).head(args.n)
    settings = DecodeSettings(batch_size=args.batch_size)
    results: dict = {"model": base_manifest["name"], "threads": args.threads, "batch_size": args.batch_size,
                     "data": str(args.data_used.relative_to(REPO) if args.data_used.is_relative_to(REPO) else args.data_used),
                     "n_utts": len(df), "audio_s": float(df["duration_s"].sum()), "rounds": args.rounds,
                     "torch": torch.__version__}
    if not args.skip_speed:
        print(f"1. speed: {len(df)} utterances ({results['audio_s']:.1f} s of audio) of {results['data']}, "
              f"{base_manifest['name']}, greedy, batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds", flush=True)
        results["speed"] = speed_section(args, base, processor, base_manifest, df, settings)
    if not args.skip_grid:
        print("2. the default grid's decoding stage", flush=True)
        results["grid"] = grid_section(args, base, processor, base_manifest, settings)
    if not args.skip_memory:
        print(f"3. decode jobs as subprocesses ({args.memory_utts} utterances)", flush=True)
        results["memory"] = memory_section(args, base_manifest, settings)
    results["masks"] = mask_sizes(base_manifest, args.model)
    entry = base.config.max_source_positions * base.config.d_model * 4
    results["cache_bytes_per_utt"] = entry

    print("\n" + "=" * 100)
    if "speed" in results:
        print(f"Decoding speed: {results['model']}, {results['n_utts']} utterances of {results['data']} "
              f"({results['audio_s']:.1f} s audio), greedy, batch {args.batch_size}, {args.threads} threads, "
              f"each batch the best of {args.rounds} interleaved rounds")
        print(f"{'method':58s} {'RTFx':>7s} {'x pipeline':>11s} {'x generate':>11s}  identical")
        for r in results["speed"]:
            print(f"{r['method']:58s} {r['rtfx']:7.1f} {r['x_pipeline']:11.2f} {r['x_generate']:11.2f}  {r['identical']}")
        print("(identical: transcripts equal to generate's for the base model, to the uncached ones for a variant)")
        by = {r["key"]: r for r in results["speed"]}
        if {"pipeline", "encoder", "fast"} <= by.keys():
            pipe, enc, fast = by["pipeline"]["seconds"], by["encoder"]["seconds"], by["fast"]["seconds"]
            print(f"(the encoder alone runs at {by['encoder']['x_pipeline']:.2f}x the pipeline; a dense decode at 1.3x "
                  f"would leave {pipe / 1.3 - enc:.1f} s for decoding, which takes {fast - enc:.1f} s in the fast loop)")
    if "grid" in results:
        g = results["grid"]
        t = g["seconds"]
        print(f"\nDecoding stage of {args.config.name}'s grid: {len(g['variants'])} variants x {len(g['sets'])} sets "
              f"({g['utts_per_set']} utterances each) = {g['jobs']} jobs, {g['audio_s']:.0f} s of audio")
        print(f"  {'path':44s} {'seconds':>8s} {'RTFx':>6s} {'x pipeline':>11s}  identical to generate")
        rows = [("transformers pipeline, every job", "pipeline"), ("before: generate, no cache", "generate"),
                ("now: fast loop + encoder cache", "workflow")]
        for label, key in rows:
            ident = g["identical_to_generate"].get(key, "reference")
            print(f"  {label:44s} {t[key]:8.1f} {g['audio_s'] / t[key]:6.1f} {t['pipeline'] / t[key]:11.2f}  {ident}")
        print("  per variant (pipeline / generate / workflow, s): " + "; ".join(
            f"{v} {d['pipeline']:.1f}/{d['generate']:.1f}/{d['workflow']:.1f}" for v, d in g["by_variant"].items()))
        print(f"  utterances decoded from cached encoder states {g['encoder_cached_utts']}; "
              f"cache on disk at the end {g['cache_bytes'] / 2**20:.0f} MB")
    if results.get("memory"):
        print("\nDecode job subprocess (python start, imports, model load, decode):")
        for r in results["memory"]:
            print(f"  {r['job']:45s} wall {r['wall_s']:6.1f} s   peak RSS {r['maxrss_mb']:6.0f} MB")
    if results["masks"]:
        ck = results["masks"][0]["checkpoint_bytes"]
        print(f"\nMask sets vs the full checkpoint (model.safetensors, {ck / 2**20:.1f} MB):")
        for r in results["masks"]:
            print(f"  {r['variant']:32s} {r['mask_bytes'] / 2**20:7.2f} MB  {100 * r['of_checkpoint']:6.2f} %")
    print(f"\nEncoder cache: {entry / 2**20:.2f} MB per utterance and stored boundary "
          f"(1500 x d_model {base.config.d_model} x float32)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
