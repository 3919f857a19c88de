"""The encoder cache: what a variant may reuse, keys, hits and misses, the size cap, atomicity, and
transcripts identical to recomputing (real tiny.en, a decoder-only and an encoder-late-layer variant)."""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from asrprune.decode import decode_frame
from asrprune.settings import DecodeSettings
from asrprune.encoder_states import CacheSpec, cache_fields
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


def test_what_a_mask_set_changes_is_read_from_its_masks():
    keep_all = torch.ones(4, 3, dtype=torch.bool)
    drop_one = keep_all.clone()
    drop_one[2, 1] = False
    masks = {"model.encoder.layers.0.fc1.weight": keep_all, "model.decoder.layers.1.fc1.weight": drop_one,
             "model.encoder.layers.2.fc2.weight": drop_one.clone()}
    assert changed_tensors(masks) == ["model.decoder.layers.1.fc1.weight", "model.encoder.layers.2.fc2.weight"]
    assert resume_boundary(changed_tensors(masks), 4) == 2
    del masks["model.encoder.layers.2.fc2.weight"]
    assert resume_boundary(changed_tensors(masks), 4) == 4  # a mask that keeps everything changes nothing


def test_the_decode_stage_reads_the_masks_not_the_manifests_counts(tmp_path, monkeypatch):
    """A manifest that says a pruned encoder block lost nothing must not move the resume boundary."""
    import json

    from asrprune import masks as M
    from asrprune.methods import compute_masks
    from asrprune.stages import decode as decode_stage
    from conftest import make_tiny_whisper

    model = make_tiny_whisper()
    base = {"name": "tiny-random", "weights_sha256": "a" * 64}
    keep = compute_masks(model, "magnitude", "enc.l2", 0.5)
    manifest = M.build_manifest(model, keep, variant="magnitude-enc.l2-s50", method="magnitude", target="enc.l2",
                                sparsity_requested=0.5, base_manifest=base)
    out = tmp_path / "masks"
    M.save_mask_set(keep, manifest, out)
    written = json.loads((out / "manifest.json").read_text())
    for t in written["tensors"].values():
        t["pruned"] = 0  # counts that lie
    (out / "manifest.json").write_text(json.dumps(written))
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    (model_dir / "manifest.json").write_text(json.dumps({**base, "files": {"config.json": "c" * 64}}))
    seen = {}

    def fake_decode(model, processor, prompt, df, settings, cache=None):
        seen["spec"] = cache
        raise RuntimeError("stop after planning the cache")

    monkeypatch.setattr("asrprune.decode.decode_frame", fake_decode)
    monkeypatch.setattr("asrprune.models.load.load_model", lambda d: (make_tiny_whisper(), None))
    monkeypatch.setattr("asrprune.models.load.generation_prompt_ids", lambda m: PROMPT)
    monkeypatch.setattr("asrprune.io.read_split", lambda p: synthetic_frame(1))
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="stop after"):
        decode_stage.decode_variant(str(model_dir), str(out), str(tmp_path / "d.parquet"), str(tmp_path / "o.parquet"),
                                    {"device": "cpu"}, cache_dir=str(tmp_path / "cache"))
    assert seen["spec"].resume_layer == 1  # the second of 2 blocks, as the masks say
    assert seen["spec"].config_sha256 == "c" * 64  # the base model's config.json hash, from its manifest


# --------------------------------------------------------------------------------------------
# Random tiny models on synthetic audio


class _Tokenizer:
    def decode(self, tokens, skip_special_tokens=True):
        return " ".join(map(str, tokens))


@pytest.fixture(scope="module")
def processor():
    from asrprune import ct2_convert

    return SimpleNamespace(feature_extractor=ct2_convert.build_feature_extractor(80), tokenizer=_Tokenizer())


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
    # the key is the sha256 of the canonical JSON of the fields, computed here by hand ...
    import json

    from asrprune.encoder_cache import FORMAT

    blob = json.dumps({"format": FORMAT, **fields()}, sort_keys=True, default=str).encode()
    assert base == hashlib.sha256(blob).hexdigest()
    # ... and the same for an equal model and feature extractor built anew (no object identity in it)
    from asrprune import ct2_convert

    again = SimpleNamespace(feature_extractor=ct2_convert.build_feature_extractor(80), tokenizer=_Tokenizer())
    assert cache_key(cache_fields(random_model(0), again, SETTINGS, _spec(SimpleNamespace(), model))) == base
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
    fe = ct2_convert.build_feature_extractor(80)
    fe.n_fft = 512
    moved = cache_fields(model, SimpleNamespace(feature_extractor=fe), SETTINGS, _spec(cache, model))
    assert cache_key(moved) != base


def test_keys_name_transformers_config_and_attention(processor, tmp_path, monkeypatch):
    """An entry is served only to a job whose transformers version, model config.json and attention
    implementation are the writer's: each is in the key, and an entry keyed without one is not found."""
    import transformers

    from asrprune import encoder_states

    model = random_model(0)
    cache = EncoderCache.from_mb(tmp_path / "cache", 100)
    fields = cache_fields(model, processor, SETTINGS, _spec(cache, model))
    assert fields["transformers"] == transformers.__version__
    assert fields["attn_implementation"] == model.config._attn_implementation == "sdpa"
    assert fields["config_sha256"] == hashlib.sha256(model.config.to_json_string().encode()).hexdigest()
    assert cache_fields(model, processor, SETTINGS, replace(_spec(cache, model), config_sha256="c" * 64))["config_sha256"] == "c" * 64
    base = cache_key(fields)
    for name, other in [("transformers", "0.0.1"), ("config_sha256", "0" * 64), ("attn_implementation", "eager")]:
        assert cache_key({**fields, name: other}) != base, name
        assert cache_key({k: v for k, v in fields.items() if k != name}) != base, name

    df = synthetic_frame(3)
    real_fields = encoder_states.cache_fields
    for name in ("transformers", "config_sha256", "attn_implementation"):
        root = tmp_path / name
        lacking = lambda *a, _n=name: {k: v for k, v in real_fields(*a).items() if k != _n}  # noqa: E731
        monkeypatch.setattr(encoder_states, "cache_fields", lacking)
        spec = _spec(EncoderCache.from_mb(root, 100), model)
        decode_frame(model, processor, PROMPT, df, SETTINGS, cache=spec)  # an entry keyed without `name`
        assert decode_frame(model, processor, PROMPT, df, SETTINGS, cache=spec).encoder_cached.all()
        monkeypatch.setattr(encoder_states, "cache_fields", real_fields)
        again = decode_frame(model, processor, PROMPT, df, SETTINGS, cache=spec)
        assert not again.encoder_cached.any(), name  # not served: computed, and stored under the full key
        assert len(spec.cache.entries()) == 2


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
    from asrprune.config import validate_config
    from asrprune.strict_yaml import load_yaml

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
    from asrprune import ct2_convert

    proc = SimpleNamespace(feature_extractor=ct2_convert.build_feature_extractor(80), tokenizer=_Tokenizer())
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
# Real tiny.en: what one variant stores, the others read, and decode as if they had computed it


CROSS_VARIANTS = {  # variant id -> (method, target, sparsity) of the default grid
    "baseline": ("baseline", None, None),
    "magnitude-dec_self_attn-s50": ("magnitude", "dec_self_attn", 0.5),
    "magnitude-enc.last_third-s50": ("magnitude", "enc.last_third", 0.5),
}


@pytest.fixture(scope="module")
def real_mask_sets(tiny_en, tiny_en_dir, tmp_path_factory):
    """The three variants' mask sets, as the prune stage writes them, for the converted tiny.en."""
    import json

    from asrprune import masks as M
    from asrprune.methods import compute_masks

    model = tiny_en[0]
    base_manifest = json.loads((tiny_en_dir / "manifest.json").read_text())
    root = tmp_path_factory.mktemp("real_masks")
    for vid, (method, target, sparsity) in CROSS_VARIANTS.items():
        keep = compute_masks(model, method, target, sparsity)
        manifest = M.build_manifest(model, keep, variant=vid, method=method, target=target,
                                    sparsity_requested=sparsity, base_manifest=base_manifest)
        M.save_mask_set(keep, manifest, root / vid)
    return root


def _decode_and_record(monkeypatch, out: Path, **kw) -> tuple[pd.DataFrame, list[tuple[torch.Tensor, torch.Tensor]]]:
    """asrprune.stages.decode.decode_variant (the decode job), recording per batch the encoder states the
    greedy loop read and the decoder's teacher-forced logits on the tokens it produced."""
    from asrprune import decode
    from asrprune.stages import decode as decode_stage

    seen = []
    loop = decode.greedy_decode

    def recording(model, hidden, prompt, limits, constants=None, compact=None):
        tokens = loop(model, hidden, prompt, limits, constants, compact)
        width = max(len(t) for t in tokens)
        eos = model.generation_config.eos_token_id
        ids = torch.tensor([prompt + t + [eos] * (width - len(t)) for t in tokens])
        with torch.inference_mode():
            logits = model(encoder_outputs=(hidden,), decoder_input_ids=ids).logits
        seen.append((hidden.clone(), logits))
        return tokens

    monkeypatch.setattr(decode, "greedy_decode", recording)
    decode_stage.decode_variant(out_path=str(out), **kw)
    monkeypatch.setattr(decode, "greedy_decode", loop)
    return pd.read_parquet(out), seen


def test_real_variants_read_what_the_baseline_stored(tiny_en_dir, real_mask_sets, default_test_sets, tmp_path, monkeypatch):
    """On tiny.en and 16 tts_noisy utterances (two batches of the default batch size, 8): the baseline's
    decode job writes the encoder cache (boundary 4 for itself, and boundary 3, where the grid's
    enc.last_third variants resume, on the way); then a decoder-only variant (reads boundary 4) and
    an encoder-range variant (reads boundary 3, runs block 3 pruned) decode from it. Each one's
    transcripts, the encoder states its greedy loop read and its logits equal an uncached decode of
    the same variant, bit for bit. The resume boundaries come from the mask files (changed_tensors),
    as in the workflow."""
    import json

    from asrprune import plan
    from asrprune.io import read_split
    from asrprune.io import write_parquet
    from conftest import default_config

    config = default_config()
    decoding = dict(config["decoding"], device="cpu")
    df = read_split(default_test_sets["tts_noisy"])
    data = tmp_path / "tts_noisy16.parquet"
    write_parquet(df.iloc[::3].head(16).reset_index(drop=True), data)
    cache_dir = tmp_path / "cache"
    job = dict(model_dir=str(tiny_en_dir), data_path=str(data), decoding=decoding,
               grid_targets=plan.grid_targets(config))
    cache = EncoderCache.from_mb(cache_dir, 1024)

    runs = {}
    for vid in CROSS_VARIANTS:  # the baseline first: it writes, the others read
        runs[vid, "cached"] = _decode_and_record(monkeypatch, tmp_path / f"{vid}.cached.parquet", **job,
                                                 mask_dir=str(real_mask_sets / vid), cache_dir=str(cache_dir))
        if vid == "baseline":  # boundaries 4 (its own) and 3, both from one encoder pass
            stored = [json.loads((p / "meta.json").read_text())["fields"] for _, _, p in cache.entries()]
            assert sorted(f["boundary"] for f in stored) == [3, 4]
    assert len(cache.entries()) == 2  # nothing else was written: the variants read
    for vid in CROSS_VARIANTS:
        runs[vid, "uncached"] = _decode_and_record(monkeypatch, tmp_path / f"{vid}.uncached.parquet", **job,
                                                   mask_dir=str(real_mask_sets / vid), cache_dir=None)

    cols = ["id", "hypothesis", "n_tokens", "token_limit", "hit_token_limit"]
    for vid in CROSS_VARIANTS:
        (cached, seen_c), (ref, seen_r) = runs[vid, "cached"], runs[vid, "uncached"]
        assert len(cached) == 16 and not ref.encoder_cached.any()
        if vid != "baseline":
            assert cached.encoder_cached.all(), vid  # read from what the baseline stored
        assert cached[cols].equals(ref[cols]), (vid, cached.hypothesis.tolist(), ref.hypothesis.tolist())
        assert len(seen_c) == len(seen_r) == 2
        for (h_c, l_c), (h_r, l_r) in zip(seen_c, seen_r):
            assert torch.equal(h_c, h_r), f"{vid}: encoder states differ from an uncached decode"
            assert torch.equal(l_c, l_r), f"{vid}: logits differ from an uncached decode"
    # The check has teeth: the encoder-range variant's states are not the baseline's, so reading the
    # baseline's final states (a boundary too deep) would change them.
    enc_states = runs["magnitude-enc.last_third-s50", "uncached"][1]
    base_states = runs["baseline", "uncached"][1]
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(enc_states, base_states))
