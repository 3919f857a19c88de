"""The encoder cache: what a variant may reuse, keys, hits and misses, the size cap, atomicity, and
transcripts identical to recomputing (real tiny.en, a decoder-only and an encoder-late-layer variant)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from asrprune.decode import CacheSpec, DecodeSettings, cache_fields, decode_frame
from asrprune.encoder_cache import (
    EncoderCache,
    EntryReader,
    EntryWriter,
    cache_key,
    changed_tensors,
    resume_boundary,
    target_boundaries,
)
from test_decode import PROMPT, random_model

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# What a mask set leaves untouched


def test_resume_boundary():
    assert resume_boundary([], 4) == 4
    assert resume_boundary(["model.decoder.layers.0.self_attn.q_proj.weight", "proj_out.weight"], 4) == 4
    assert resume_boundary(["model.encoder.layer_norm.weight"], 4) == 4  # applied after the last block
    assert resume_boundary(["model.encoder.layers.3.fc1.weight", "model.encoder.layers.2.fc2.weight"], 4) == 2
    assert resume_boundary(["model.encoder.layers.0.fc1.weight"], 4) == 0
    assert resume_boundary(["model.encoder.conv2.weight", "model.encoder.layers.3.fc1.weight"], 4) == 0
    assert resume_boundary(["model.encoder.embed_positions.weight"], 4) == 0


def test_masks_that_keep_everything_change_nothing():
    manifest = {"tensors": {"model.encoder.layers.0.fc1.weight": {"pruned": 0}, "model.decoder.layers.1.fc1.weight": {"pruned": 9}}}
    assert changed_tensors(manifest) == ["model.decoder.layers.1.fc1.weight"]
    assert resume_boundary(changed_tensors(manifest), 4) == 4


# --------------------------------------------------------------------------------------------
# Random tiny models on synthetic audio


class _Tokenizer:
    def decode(self, tokens, skip_special_tokens=True):
        return " ".join(map(str, tokens))


@pytest.fixture(scope="module")
def processor():
    from asrprune import ct2

    return SimpleNamespace(feature_extractor=ct2.build_feature_extractor(80), tokenizer=_Tokenizer())


def synthetic_frame(n: int = 5, seed: int = 0) -> pd.DataFrame:
    from asrprune.audio import encode_flac

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        dur = 0.5 + 0.25 * i
        audio = 0.3 * rng.standard_normal(int(16000 * dur)).astype(np.float32)
        rows.append({"id": f"u{i}", "audio": encode_flac(audio), "duration_s": dur, "text": f"t{i}"})
    return pd.DataFrame(rows)


def _spec(cache, model, changed=(), dataset="d0", weights="w0"):
    return CacheSpec(cache, weights, dataset, resume_boundary(changed, model.config.encoder_layers))


def _same(a, b):
    cols = ["id", "hypothesis", "n_tokens", "token_limit", "hit_token_limit"]
    return a[cols].equals(b[cols])


SETTINGS = DecodeSettings(batch_size=2, max_tokens_per_second=4.0, max_tokens_margin=2)


def test_keys(processor):
    model = random_model(0)
    cache = SimpleNamespace()  # the key does not depend on the cache object
    fields = lambda **kw: cache_fields(model, processor, SETTINGS, _spec(cache, model, **kw))  # noqa: E731
    base = cache_key(fields())
    assert cache_key(fields()) == base
    # decoder-only variants share the entry; a late encoder layer needs another; early layers differ again
    assert cache_key(fields(changed=["model.decoder.layers.0.fc1.weight"])) == base
    late = cache_key(fields(changed=["model.encoder.layers.1.fc1.weight"]))
    late_other_sparsity = cache_key(fields(changed=["model.encoder.layers.1.fc2.weight"]))
    assert late == late_other_sparsity != base
    assert cache_key(fields(changed=["model.encoder.layers.0.fc1.weight"])) not in {base, late}
    assert cache_key(fields(dataset="d1")) != base
    assert cache_key(fields(weights="w1")) != base
    other = cache_fields(model, processor, DecodeSettings(batch_size=3), _spec(cache, model))
    assert cache_key(other) != base
    from asrprune import ct2

    fe = ct2.build_feature_extractor(80)
    fe.n_fft = 512
    moved = cache_fields(model, SimpleNamespace(feature_extractor=fe), SETTINGS, _spec(cache, model))
    assert cache_key(moved) != base


def test_hit_miss_and_identical_rows(processor, tmp_path):
    model = random_model(1, lively=True)
    df = synthetic_frame()
    cache = EncoderCache.from_mb(tmp_path / "cache", 100)
    ref = decode_frame(model, processor, PROMPT, df, SETTINGS)
    first = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=_spec(cache, model))
    assert len(cache.entries()) == 1 and not first.encoder_cached.any()  # a miss computes and writes
    second = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=_spec(cache, model))
    assert second.encoder_cached.all() and len(cache.entries()) == 1  # a hit
    assert _same(ref, first) and _same(ref, second)
    third = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=_spec(cache, model, dataset="d1"))
    assert not third.encoder_cached.any() and len(cache.entries()) == 2  # another dataset: a miss

    # a variant that prunes the second encoder block resumes from the base model's states before it
    variant = copy.deepcopy(model)
    with torch.no_grad():
        variant.model.encoder.layers[1].fc1.weight[::2] = 0
    changed = ["model.encoder.layers.1.fc1.weight"]
    vref = decode_frame(variant, processor, PROMPT, df, SETTINGS)
    vfirst = decode_frame(variant, processor, PROMPT, df, SETTINGS, cache=_spec(cache, variant, changed))
    vsecond = decode_frame(variant, processor, PROMPT, df, SETTINGS, cache=_spec(cache, variant, changed))
    assert not vfirst.encoder_cached.any() and vsecond.encoder_cached.all()
    assert _same(vref, vfirst) and _same(vref, vsecond)
    assert not _same(vref, ref)  # the pruning did change the transcripts, so the check has teeth
    # the stem cannot be resumed: no entry, full computation
    n = len(cache.entries())
    stem = decode_frame(variant, processor, PROMPT, df, SETTINGS, cache=_spec(cache, variant, ["model.encoder.conv1.weight"]))
    assert len(cache.entries()) == n and not stem.encoder_cached.any()


def test_a_full_encoder_pass_also_stores_the_grids_earlier_boundaries(processor, tmp_path):
    from dataclasses import replace

    model = random_model(1, lively=True)
    df = synthetic_frame()
    cache = EncoderCache.from_mb(tmp_path / "cache", 100)
    assert target_boundaries(model, ["dec_self_attn", "enc.last_half", "all", "enc_ffn"]) == (1,)
    base = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=replace(_spec(cache, model), also_store=(1,)))
    assert not base.encoder_cached.any() and len(cache.entries()) == 2  # its own boundary L, and boundary 1
    assert _same(base, decode_frame(model, processor, PROMPT, df, SETTINGS))

    variant = copy.deepcopy(model)
    with torch.no_grad():
        variant.model.encoder.layers[1].fc1.weight[::2] = 0
    changed = ["model.encoder.layers.1.fc1.weight"]
    first = decode_frame(variant, processor, PROMPT, df, SETTINGS, cache=_spec(cache, variant, changed))
    assert first.encoder_cached.all() and len(cache.entries()) == 2  # read what the baseline stored
    assert _same(first, decode_frame(variant, processor, PROMPT, df, SETTINGS))
    assert not _same(first, base)  # the pruning changed transcripts, so the comparison has teeth

    # a boundary at or after the job's own is not on its path; a stored one is not rewritten
    again = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=replace(_spec(cache, model, dataset="d1"), also_store=(1, 2, 5)))
    assert len(cache.entries()) == 4 and not again.encoder_cached.any()


def test_a_job_starts_from_an_earlier_boundary_another_variant_stored(processor, tmp_path):
    from dataclasses import replace

    model = random_model(1, lively=True)
    df = synthetic_frame()
    cache = EncoderCache.from_mb(tmp_path / "cache", 100)
    variant = copy.deepcopy(model)
    with torch.no_grad():
        variant.model.encoder.layers[1].fc1.weight[::2] = 0
    changed = ["model.encoder.layers.1.fc1.weight"]
    # the encoder-range variant runs first and stores boundary 1 for itself
    first = decode_frame(variant, processor, PROMPT, df, SETTINGS, cache=_spec(cache, variant, changed))
    assert not first.encoder_cached.any() and len(cache.entries()) == 1
    # the baseline then runs only block 1 on top of it, stores boundary 2, and counts as cached
    base = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=replace(_spec(cache, model), also_store=(1,)))
    assert base.encoder_cached.all() and len(cache.entries()) == 2
    assert _same(base, decode_frame(model, processor, PROMPT, df, SETTINGS))
    assert not _same(base, first)
    # and a decoder-only variant reads boundary 2
    again = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=replace(_spec(cache, model), also_store=(1,)))
    assert again.encoder_cached.all() and _same(again, base) and len(cache.entries()) == 2


def test_the_grids_targets_for_the_cache():
    from asrprune import plan
    from asrprune.config import load_yaml, validate_config

    config = validate_config(load_yaml(REPO / "config.yaml"))
    assert plan.grid_targets(config) == ["dec_ffn", "dec_self_attn", "enc.last_third"]


def _write_entry(cache: EncoderCache, key: str, batches: int = 2, fill: float = 0.0) -> list[torch.Tensor]:
    writer = cache.open(key, [[f"{key}-{i}"] for i in range(batches)])
    assert isinstance(writer, EntryWriter)
    tensors = [torch.full((1, 1500, 16), fill + i) for i in range(batches)]
    for i, t in enumerate(tensors):
        writer.put(i, t)
    assert writer.publish()
    return tensors


def test_eviction_respects_the_cap(tmp_path):
    one = 2 * (1500 * 16 * 4)  # two batches of [1, 1500, 16] float32, plus small headers
    cache = EncoderCache(tmp_path, cap_bytes=int(3.5 * one))
    keys = [f"{i:064x}" for i in range(5)]
    for n, key in enumerate(keys[:3]):
        _write_entry(cache, key)
        os.utime(cache.final_dir(key), (1000 + n, 1000 + n))  # key0 oldest
    EntryReader(cache, keys[0], [[f"{keys[0]}-0"], [f"{keys[0]}-1"]], published=True).get(0)  # a read refreshes key0
    _write_entry(cache, keys[3])  # over the cap: the least recently used (key1) goes
    names = {p.name for _, _, p in cache.entries()}
    assert names == {keys[0], keys[2], keys[3]} and cache.usage_bytes() <= cache.cap_bytes
    assert not cache.fits(4 * one) and cache.fits(one)
    # an entry bigger than the whole cap is never written by decode_frame
    small = EncoderCache(tmp_path / "small", cap_bytes=1000)
    model = random_model(0)
    from asrprune import ct2

    proc = SimpleNamespace(feature_extractor=ct2.build_feature_extractor(80), tokenizer=_Tokenizer())
    out = decode_frame(model, proc, PROMPT, synthetic_frame(2), SETTINGS, cache=_spec(small, model))
    assert small.entries() == [] and not out.encoder_cached.any()


KILLED_WRITER = """
import os, signal, sys, torch
sys.path.insert(0, {repo!r})
from asrprune.encoder_cache import EncoderCache
cache = EncoderCache({root!r}, cap_bytes=10**9)
writer = cache.open({key!r}, [["a"], ["b"]])
writer.put(0, torch.zeros(1, 1500, 16))
os.kill(os.getpid(), signal.SIGKILL)  # dies between two batches, before publishing
"""


def test_a_killed_writer_leaves_no_entry(tmp_path):
    key = "f" * 64
    code = KILLED_WRITER.format(repo=str(REPO), root=str(tmp_path), key=key)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    cache = EncoderCache(tmp_path, cap_bytes=10**9)
    assert not cache.final_dir(key).exists() and cache.entries() == []  # no partial entry is ever visible
    assert cache.partial_dir(key).is_dir()
    # a follower of the dead writer gives up at once (its pid is gone) and computes by itself
    reader = EntryReader(cache, key, [["a"], ["b"]], published=False)
    assert reader.get(1) is None
    # the next job takes the entry over and completes it
    writer = cache.open(key, [["a"], ["b"]])
    assert isinstance(writer, EntryWriter)
    writer.put(0, torch.ones(1, 1500, 16))
    writer.put(1, torch.ones(1, 1500, 16))
    assert writer.publish() and [p.name for _, _, p in cache.entries()] == [key]
    assert not cache.partial_dir(key).exists()


def test_dead_partials_are_cleaned_and_writes_are_atomic(tmp_path):
    cache = EncoderCache(tmp_path, cap_bytes=10**9, stale_s=0.5)
    key = "e" * 64
    writer = cache.open(key, [["a"]])
    (writer.dir / "owner.json").write_text('{"host": "elsewhere", "pid": 1}')  # a job on another node...
    os.utime(writer.dir / "owner.json", (time.time() - 10, time.time() - 10))  # ...silent for 10 s
    cache.evict()
    assert not cache.partial_dir(key).exists()
    with pytest.raises(OSError):  # the writer lost its directory: the error reaches it, never a reader
        writer.put(0, torch.zeros(1, 1500, 16))
    assert list(tmp_path.iterdir()) == []  # nothing recreated, nothing half-written

    # a writer taken over while alive (silent too long) never touches the new owner's entry
    slow = cache.open(key, [["a"]])
    os.utime(slow.dir / "owner.json", (time.time() - 10, time.time() - 10))  # alive, but silent for 10 s
    new = cache.open(key, [["a"]])
    assert isinstance(new, EntryWriter) and new.token != slow.token
    with pytest.raises(OSError):
        slow.put(0, torch.zeros(1, 1500, 16))
    slow.abort()
    with pytest.raises(OSError):
        slow.publish()
    new.put(0, torch.ones(1, 1500, 16))
    assert new.publish() and torch.equal(EntryReader(cache, key, [["a"]], True).get(0), torch.ones(1, 1500, 16))


def test_followers_read_what_the_writer_writes(tmp_path):
    cache = EncoderCache(tmp_path, cap_bytes=10**9, poll_s=0.01)
    key = "c" * 64
    batches = [["a"], ["b"], ["c"]]
    writer = cache.open(key, batches)
    follower = cache.open(key, batches)  # a second job while the first writes
    assert isinstance(writer, EntryWriter) and isinstance(follower, EntryReader) and not follower.published
    tensors = [torch.randn(1, 1500, 16) for _ in batches]

    def write():
        for i, t in enumerate(tensors):
            time.sleep(0.05)
            writer.put(i, t)
        writer.publish()

    thread = threading.Thread(target=write)
    thread.start()
    got = [follower.get(i) for i in range(3)]
    thread.join()
    assert all(torch.equal(a, b) for a, b in zip(got, tensors))
    assert isinstance(cache.open(key, batches), EntryReader)
    assert cache.open(key, [["x"], ["b"], ["c"]]) is None  # another batching: not used


# --------------------------------------------------------------------------------------------
# Real tiny.en: cached transcripts are the recomputed ones


@pytest.fixture(scope="module")
def tiny_en_and_utts():
    model_dir = REPO / "results" / "models" / "tiny.en"
    data = REPO / "results" / "data" / "ivr.parquet"
    if not (model_dir / "model.safetensors").is_file() or not data.is_file():
        pytest.skip("needs results/models/tiny.en and results/data/ivr.parquet (snakemake builds them)")
    from asrprune.batches import read_split
    from asrprune.models import generation_prompt_ids, load_model

    model, processor = load_model(model_dir)
    df = read_split(data)
    df = df.nsmallest(4, "duration_s").sort_values("id").reset_index(drop=True)
    return model, processor, generation_prompt_ids(model), df


@pytest.mark.parametrize("target,boundary", [("dec_self_attn", 4), ("enc_ffn.last_half", 2)])
def test_real_cached_equals_recomputed(tiny_en_and_utts, tmp_path, target, boundary):
    from asrprune.masks import apply_masks
    from asrprune.methods import compute_masks

    base, processor, prompt, df = tiny_en_and_utts
    model = copy.deepcopy(base)
    masks = compute_masks(model, "magnitude", target, 0.5)
    apply_masks(model, masks)
    changed = [n for n, m in masks.items() if not bool(m.all())]
    spec = CacheSpec(EncoderCache.from_mb(tmp_path, 200), "tiny.en", "ivr", resume_boundary(changed, 4))
    assert spec.resume_layer == boundary
    settings = DecodeSettings(batch_size=4)
    ref = decode_frame(model, processor, prompt, df, settings)
    first = decode_frame(model, processor, prompt, df, settings, cache=spec)
    hit = decode_frame(model, processor, prompt, df, settings, cache=spec)
    assert not first.encoder_cached.any() and hit.encoder_cached.all()
    assert _same(ref, first) and _same(ref, hit), (ref.hypothesis.tolist(), hit.hypothesis.tolist())
