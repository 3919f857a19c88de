"""The fast greedy loop against `generate`: identical tokens, suppress tokens, per-utterance token limits.

Random tiny Whisper models check the loop op for op (it must give `generate`'s tokens whatever the
weights); the real tiny.en (converted once per test run, tests/conftest.py) checks whole transcripts
on every utterance of the default test sets, and hypotheses cut at tight token limits.
"""

from __future__ import annotations

import pytest
import torch

from asrprune.decode import decode_frame
from asrprune.settings import DecodeSettings, token_limit
from asrprune.encoder import encode, encoder_prefix, encoder_resume
from asrprune.generation import generate_tokens
from asrprune.greedy import fast_unsupported, greedy_decode
from conftest import make_tiny_whisper

VOCAB = 80
EOS, SOT, NO_TS = VOCAB - 4, VOCAB - 3, VOCAB - 2
PROMPT = [SOT, NO_TS]


def random_model(seed: int = 0, suppress=(), begin_suppress=(), eos: int = EOS, lively: bool = False):
    """A random 2+2-layer Whisper whose generation config makes `generate` greedy with PROMPT.

    `lively` scales the attention weights up so that the tokens depend on the audio and differ
    between rows (a plain random init repeats one token whatever the input).
    """
    from transformers import GenerationConfig

    model = make_tiny_whisper(seed=seed, vocab_size=VOCAB)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT,
        eos_token_id=eos,
        pad_token_id=eos,
        bos_token_id=eos,
        no_timestamps_token_id=NO_TS,
        is_multilingual=False,
        max_length=model.config.max_target_positions,
        suppress_tokens=list(suppress),
        begin_suppress_tokens=list(begin_suppress),
        return_timestamps=False,
    )
    if lively:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2 and "encoder_attn" in name:
                    p.mul_(30)
                elif p.dim() == 2 and "decoder.layers" in name and "self_attn" in name:
                    p.mul_(10)
    return model.eval()


def pick_eos(model, feats, n: int = 16) -> int:
    """A token the rows produce at different steps: as eos it ends rows at different times."""
    with torch.inference_mode():
        free = greedy_decode(model, encode(model, feats), PROMPT, [n] * feats.shape[0])
    firsts = {}
    for t in set(sum(free, [])):
        firsts[t] = {row.index(t) if t in row else n for row in free}
    return max(sorted(firsts), key=lambda t: (len(firsts[t]), -min(firsts[t])))


def random_features(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 80, 3000, generator=g)


def reference(model, feats, limits):
    """generate's tokens, each row cut at its limit and after its eos (generate pads ended rows with eos)."""
    eos = model.generation_config.eos_token_id
    rows = generate_tokens(model, PROMPT, limits, DecodeSettings(), features=feats)
    return [row[: row.index(eos) + 1] if eos in row else row for row in rows]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_loop_gives_generates_tokens(seed):
    feats = random_features(5, seed)
    eos = pick_eos(random_model(seed, lively=True), feats)
    model = random_model(seed, suppress=[3, 5, 7], begin_suppress=[eos, 11], eos=eos, lively=True)
    limits = [12, 3, 30, 7, 1]
    with torch.inference_mode():
        fast = greedy_decode(model, encode(model, feats), PROMPT, limits)
    assert fast == reference(model, feats, limits)
    assert any(eos in t for t in fast) and any(eos not in t for t in fast)  # rows end at different times
    assert all(len(t) == (t.index(eos) + 1 if eos in t else lim) for t, lim in zip(fast, limits))


def test_leaving_ended_rows_out_of_cross_attention_changes_no_token():
    feats = random_features(8, 5)
    eos = pick_eos(random_model(5, lively=True), feats, n=24)
    model = random_model(5, eos=eos, lively=True)
    limits = [24, 20, 3, 24, 2, 24, 9, 24]
    with torch.inference_mode():
        hidden = encode(model, feats)
        compact = greedy_decode(model, hidden, PROMPT, limits)
        full = greedy_decode(model, hidden, PROMPT, limits, compact=False)
    assert compact == full
    assert sum(len(t) < max(limits) for t in compact) >= 3  # rows did end early, so compaction happened


def test_token_limits_are_per_utterance():
    model = random_model(0)  # no eos bias: rows run to their limits
    feats = random_features(3)
    limits = [2, 9, 5]
    with torch.inference_mode():
        fast = greedy_decode(model, encode(model, feats), PROMPT, limits)
        # each row alone with its own limit gives the same tokens as in the batch
        alone = [greedy_decode(model, encode(model, feats[i : i + 1]), PROMPT, [limits[i]])[0] for i in range(3)]
    assert all(len(t) <= lim for t, lim in zip(fast, limits))
    assert [t[: len(a)] for t, a in zip(fast, alone)] == alone
    assert fast == reference(model, feats, limits)


def test_suppress_tokens_are_never_produced():
    feats = random_features(4, 4)
    plain = random_model(4, lively=True)
    with torch.inference_mode():
        free = greedy_decode(plain, encode(plain, feats), PROMPT, [8] * 4)
    tokens = sum((t[1:] for t in free), [])
    common = max(sorted(set(tokens)), key=tokens.count)
    first = {t[0] for t in free}
    model = random_model(4, suppress=[common], begin_suppress=sorted(first | {EOS}), lively=True)
    with torch.inference_mode():
        out = greedy_decode(model, encode(model, feats), PROMPT, [8] * 4)
    assert all(common not in t for t in out)
    assert all(t[0] not in first and t[0] != EOS for t in out)
    assert out == reference(model, feats, [8] * 4)
    assert model.generation_config.suppress_tokens == [common]  # generate worked on a copy


def test_logits_processors_the_loop_lacks_fall_back_to_generate():
    model = random_model(0)
    assert fast_unsupported(model, DecodeSettings()) is None
    assert "num_beams" in fast_unsupported(model, DecodeSettings(num_beams=2))
    model.generation_config.repetition_penalty = 1.3
    assert "repetition_penalty" in fast_unsupported(model, DecodeSettings())
    with pytest.raises(ValueError, match="backend"):
        DecodeSettings(backend="onnx")


def test_split_encoder_is_bit_identical():
    model = random_model(1)
    feats = random_features(2, 1)
    with torch.inference_mode():
        full = model.model.encoder(feats).last_hidden_state
        assert torch.equal(encode(model, feats), full)
        for k in range(len(model.model.encoder.layers) + 1):
            assert torch.equal(encoder_resume(model, encoder_prefix(model, feats, k).clone(), k), full)


def test_token_limit_scales_with_duration():
    s = DecodeSettings(max_tokens_per_second=6.0, max_tokens_margin=10)
    assert token_limit(1.0, s, 446) == 16 and token_limit(100.0, s, 446) == 446


# --------------------------------------------------------------------------------------------
# Real tiny.en on the default test sets (conftest builds both once per test run)


@pytest.fixture(scope="session")
def short_utts(default_test_sets):
    from asrprune.io import read_split

    df = read_split(default_test_sets["ivr"])
    return df.nsmallest(4, "duration_s").sort_values("id").reset_index(drop=True)


def _same(a, b):
    cols = ["id", "hypothesis", "n_tokens", "token_limit", "hit_token_limit"]
    return a[cols].equals(b[cols])


def test_real_fast_equals_generate_at_tight_token_limits(tiny_en, short_utts):
    model, processor, prompt = tiny_en
    for extra in ({}, {"max_tokens_per_second": 0.5, "max_tokens_margin": 1}):  # normal; cut at the limit
        fast = decode_frame(model, processor, prompt, short_utts, DecodeSettings(batch_size=2, **extra))
        ref = decode_frame(model, processor, prompt, short_utts, DecodeSettings(batch_size=2, backend="generate", **extra))
        assert _same(fast, ref), (fast.hypothesis.tolist(), ref.hypothesis.tolist())
        assert (fast.n_tokens <= fast.token_limit).all()
    assert fast.hit_token_limit.any()  # the tight limits did cut hypotheses
    assert not fast.encoder_cached.any()


FULL_SET_VARIANTS = ("baseline", "magnitude-dec_self_attn-s50", "magnitude-dec_ffn-s50")


def test_real_fast_equals_generate_on_every_default_utterance(tiny_en, default_test_sets):
    """The fast loop gives `generate`'s tokens on all 144 utterances of ivr, tts_clean and tts_noisy
    (48 each, the default config's sets) for the baseline and two pruned variants of the default grid.

    Both decoders read the same encoder states, computed once per batch with `encode` (bit-identical
    to the model's own encoder, test_split_encoder_is_bit_identical): the two variants prune only the
    decoder, so their encoder is the baseline's, and the comparison costs decoding alone (about 2 min
    on 2 cores). Batches, order and token limits are the decode stage's (batch_chunks, token_limit,
    the default DecodeSettings); `generate` goes through generate_tokens as the `generate` backend does.
    """
    import copy

    from asrprune.batches import batch_chunks, chunk_features
    from asrprune.io import read_split
    from asrprune.greedy import loop_constants
    from asrprune.masks import apply_masks
    from asrprune.methods import compute_masks
    from asrprune.variants import Variant

    base, processor, prompt = tiny_en
    variants = {}
    for vid in FULL_SET_VARIANTS:
        spec = Variant.parse(vid)
        model = base if spec.method == "baseline" else copy.deepcopy(base)
        if model is not base:
            apply_masks(model, compute_masks(model, spec.method, spec.target, spec.sparsity))
        variants[vid] = (model, loop_constants(model, torch.device("cpu")))
    settings = DecodeSettings()
    ceiling = base.config.max_target_positions - len(prompt)
    eos = base.generation_config.eos_token_id
    n_utts, differ, changed = 0, [], 0
    for name, path in default_test_sets.items():
        df = read_split(path)
        assert len(df) == 48, name
        for chunk in batch_chunks(df, settings.batch_size):
            limits = [token_limit(float(d), settings, ceiling) for d in chunk["duration_s"]]
            with torch.inference_mode():
                hidden = encode(base, chunk_features(chunk, processor))
            tokens = {}
            for vid, (model, constants) in variants.items():
                fast = greedy_decode(model, hidden, prompt, limits, constants)
                ref = generate_tokens(model, prompt, limits, settings, encoder_hidden=hidden)
                ref = [row[: row.index(eos) + 1] if eos in row else row for row in ref]
                differ += [(name, vid, uid) for uid, a, b in zip(chunk["id"], fast, ref) if a != b]
                tokens[vid] = fast
            changed += sum(len({tuple(tokens[v][i]) for v in tokens}) > 1 for i in range(len(chunk)))
            n_utts += len(chunk)
    assert n_utts == 144
    assert differ == [], f"{len(differ)} of {3 * n_utts} hypotheses differ from generate's: {differ[:10]}"
    assert changed >= 10  # the pruned variants do decode differently, so all three paths are exercised


def test_decoded_rows_carry_the_sentence_id_as_prompt_id():
    """Degraded copies keep their source's sentence_id, so they share a prompt id (the statistics' unit)."""
    import pandas as pd

    from asrprune.decode import _rows

    class Tok:
        def decode(self, tokens, skip_special_tokens=True):
            return " ".join(map(str, tokens))

    chunk = pd.DataFrame({"id": ["a+pink5", "a+reverb"], "text": ["t", "t"], "duration_s": [1.0, 1.0],
                          "sentence_id": ["a", "a"]})
    rows = _rows(chunk, [[1, 9], [2]], [5, 5], 0.1, False, Tok(), 9, ["en", "en"])
    assert [r["prompt_id"] for r in rows] == ["a", "a"] and rows[0]["hypothesis"] == "1"
    older = _rows(chunk.drop(columns="sentence_id"), [[1, 9], [2]], [5, 5], 0.1, False, Tok(), 9, ["en", "en"])
    assert [r["prompt_id"] for r in older] == ["a+pink5", "a+reverb"]
