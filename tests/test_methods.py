"""Pruning methods: exact counts, agreement with torch.nn.utils.prune, schedules, allocation, wanda."""

import pytest
import torch
import torch.nn.utils.prune as tprune

from asrprune import allocation, methods, schedules
from asrprune.activations import input_activation_norms
from asrprune.batches import IGNORE_INDEX, Batch
from asrprune.components import target_tensors
from asrprune.methods import PruneContext, compute_masks
from asrprune.variants import Variant
from conftest import make_tiny_whisper


def n_pruned(masks):
    return sum(int((~m).sum()) for m in masks.values())


def n_total(masks):
    return sum(m.numel() for m in masks.values())


@pytest.mark.parametrize("method,target", [("magnitude", "dec_self_attn"), ("magnitude", "enc.last_half"),
                                           ("global", "all"), ("random", "dec_ffn"), ("magnitude", "layernorm")])
@pytest.mark.parametrize("sparsity", [0.0, 0.13, 0.5, 0.97, 1.0])
def test_pooled_methods_prune_exactly_round_s_n(tiny_whisper, method, target, sparsity):
    masks = compute_masks(tiny_whisper, method, target, sparsity, context=PruneContext(seed=3))
    assert set(masks) == set(target_tensors(tiny_whisper, target))
    assert n_pruned(masks) == round(sparsity * n_total(masks))
    assert all(m.dtype == torch.bool for m in masks.values())


def without_ties(model, seed=0):
    """Give every prunable matrix entry a distinct magnitude (random float32 init has a few ties)."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    names = target_tensors(model, "all")
    n = sum(params[x].numel() for x in names)
    values = (torch.randperm(n, generator=g).float() + 1) / n
    start = 0
    with torch.no_grad():
        for x in names:
            p = params[x]
            sign = torch.where(p >= 0, 1.0, -1.0)
            p.copy_(sign * values[start : start + p.numel()].reshape(p.shape))
            start += p.numel()
    return model


@pytest.mark.parametrize("method,target", [("magnitude", "dec_self_attn"), ("magnitude", "enc_ffn"), ("global", "all")])
@pytest.mark.parametrize("sparsity", [0.1, 0.4, 0.5, 0.83])
def test_magnitude_equals_torch_global_unstructured_l1(method, target, sparsity):
    model = without_ties(make_tiny_whisper(seed=1))
    masks = compute_masks(model, method, target, sparsity, context=PruneContext())
    flat = torch.cat([dict(model.named_parameters())[n].detach().abs().flatten() for n in masks])
    assert flat.unique().numel() == flat.numel(), "the comparison needs weights without ties"
    k = round(sparsity * flat.numel())
    modules = [(model.get_submodule(n.rsplit(".", 1)[0]), "weight") for n in masks]
    tprune.global_unstructured(modules, pruning_method=tprune.L1Unstructured, amount=k)
    for (module, _), (name, mask) in zip(modules, masks.items()):
        assert torch.equal(module.weight_mask.bool(), mask), name


def test_ties_break_by_flat_index_in_model_order(tiny_whisper):
    # Random init sets every LayerNorm gamma to 1 and beta to 0: all betas tie at 0, so the k
    # pruned weights must be the first k betas in model order, and no gamma.
    masks = compute_masks(tiny_whisper, "magnitude", "layernorm", 0.3, context=PruneContext())
    k = round(0.3 * n_total(masks))
    betas = [n for n in masks if n.endswith(".bias")]
    assert k <= sum(masks[n].numel() for n in betas)
    pruned = torch.cat([~masks[n].flatten() for n in betas])
    assert pruned[:k].all() and not pruned[k:].any()


def test_uniform_prunes_each_tensor_at_the_sparsity(tiny_whisper):
    masks = compute_masks(tiny_whisper, "uniform", "all", 0.37, context=PruneContext())
    for name, m in masks.items():
        assert int((~m).sum()) == round(0.37 * m.numel()), name
        w = dict(tiny_whisper.named_parameters())[name].detach().abs()
        if (~m).any() and m.any():
            assert w[~m].max() <= w[m].min()  # a per-tensor threshold


def test_schedule_prunes_every_target_at_its_sparsity(tiny_whisper):
    ctx = PruneContext(schedule=schedules.resolve_schedule("paper_text"))
    masks = compute_masks(tiny_whisper, "schedule", "all", None, context=ctx)
    pools = ctx.notes["schedule_pools"]
    for target, rate in schedules.SCHEDULES["paper_text"].items():
        assert pools[target]["tensors"] > 0, target
        assert pools[target]["pruned"] == round(rate.sparsity * pools[target]["numel"]), target
    # 2 encoder layers: last third is layer 1, whose FFN takes the larger 50 %; layer 0's FFN keeps 40 %.
    assert methods.schedule_assignment(tiny_whisper, ctx.schedule)["model.encoder.layers.1.fc1.weight"] == "enc.last_third"
    assert methods.schedule_assignment(tiny_whisper, ctx.schedule)["model.encoder.layers.0.fc1.weight"] == "enc_ffn"
    layer0_ffn = {n: masks[n] for n in masks if n.startswith("model.encoder.layers.0.fc")}
    assert n_pruned(layer0_ffn) == round(0.4 * n_total(layer0_ffn))
    assert not any(".encoder_attn." in n or "decoder.layers.0.fc" in n for n in masks)
    assert "model.encoder.conv1.weight" in masks and "model.decoder.layer_norm.weight" in masks


def test_unknown_schedule_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"'nope'.*authors40, paper_text"):
        schedules.resolve_schedule("nope")
    assert schedules.resolve_schedule("mine", {"mine": {"dec_ffn": 30}}) == {"dec_ffn": schedules.Rate(0.3)}
    assert schedules.resolve_schedule("mine", {"mine": {"dec_ffn": {"sparsity": 30, "per_tensor": True}}}) == {
        "dec_ffn": schedules.Rate(0.3, per_tensor=True)
    }
    with pytest.raises(ValueError, match=r"'mine', target 'dec_ffn'.*per_tensor"):
        schedules.resolve_schedule("mine", {"mine": {"dec_ffn": {"sparsty": 30}}})


def whisper_small_on_meta():
    """whisper-small's architecture (openai/whisper-small config.json) without weights."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(
        vocab_size=51865, d_model=768, encoder_layers=12, decoder_layers=12, encoder_attention_heads=12,
        decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=448,
    )
    with torch.device("meta"):
        return WhisperForConditionalGeneration(cfg)


def test_authors40_prunes_39_7_percent_of_whisper_small_and_paper_text_18_1():
    model = whisper_small_on_meta()
    total = sum(p.numel() for p in model.parameters())
    assert total == 241_734_912  # the paper's 241.73 M
    _, authors = methods.schedule_pruned_count(model, schedules.resolve_schedule("authors40"))
    _, text = methods.schedule_pruned_count(model, schedules.resolve_schedule("paper_text"))
    assert authors / total == pytest.approx(0.397, abs=0.001)
    assert authors == 95_950_762
    assert text / total == pytest.approx(0.181, abs=0.001)
    # The decoder FFN thirds are the authors' layers 0-3, 4-7 and 8-11 (by relative depth).
    winner = methods.schedule_assignment(model, schedules.resolve_schedule("authors40"))
    assert [winner[f"model.decoder.layers.{i}.fc1.weight"] for i in (3, 4, 7, 8)] == [
        "dec_ffn.first_third", "dec_ffn.middle_third", "dec_ffn.middle_third", "dec_ffn.last_third"]
    assert "model.decoder.embed_positions.weight" not in winner and "model.encoder.conv1.bias" not in winner


def authors_l1_unstructured(model):
    """The authors' procedure, transcribed from their `apply_custom_l1_pruning` with `base_pruning_config`:
    torch's `prune.l1_unstructured` on every module's weight at its rate. Returns keep-masks."""
    rates = {"encoder_ffn": 50, "decoder_ffn_first": 25, "decoder_ffn_middle": 45, "decoder_ffn_last": 30,
             "encoder_self_attn": 40, "decoder_self_attn": 50, "decoder_cross_attn": 45, "token_embeddings": 25,
             "conv_layers": 30}
    n_dec = model.config.decoder_layers
    out = {}
    for name, module in model.named_modules():
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            continue
        layer = int(name.split("layers.")[1].split(".")[0]) if "layers." in name else None
        if "encoder" in name and ("fc1" in name or "fc2" in name):
            key = "encoder_ffn"
        elif "decoder" in name and ("fc1" in name or "fc2" in name):
            # their `layer < 4 / < 8` on 12 layers, i.e. thirds of the decoder's depth
            key = ("decoder_ffn_first", "decoder_ffn_middle", "decoder_ffn_last")[min(2, int(3 * (layer + 0.5) / n_dec))]
        elif "encoder" in name and "self_attn" in name and name.endswith("_proj"):
            key = "encoder_self_attn"
        elif "decoder" in name and "self_attn" in name and name.endswith("_proj"):
            key = "decoder_self_attn"
        elif "decoder" in name and "encoder_attn" in name and name.endswith("_proj"):
            key = "decoder_cross_attn"
        elif "embed_tokens" in name:
            key = "token_embeddings"
        elif "conv" in name:
            key = "conv_layers"
        else:
            continue
        tprune.l1_unstructured(module, "weight", amount=rates[key] / 100)
        out[f"{name}.weight"] = module.weight_mask.bool().clone()
        tprune.remove(module, "weight")
    return out


def test_authors40_equals_the_authors_per_module_l1_unstructured():
    model = without_ties(make_tiny_whisper(seed=2))
    with torch.no_grad():  # the token embedding too: distinct magnitudes, so torch's topk has no ties to break
        w = model.model.decoder.embed_tokens.weight
        w.copy_(torch.sign(w) * (torch.randperm(w.numel()).float().reshape(w.shape) + 1) / w.numel())
    ctx = PruneContext(schedule=schedules.resolve_schedule("authors40"))
    ours = compute_masks(model, "schedule", "all", None, context=ctx)
    twin = make_tiny_whisper(seed=2)
    twin.load_state_dict(model.state_dict())
    theirs = authors_l1_unstructured(twin)
    assert set(ours) == set(theirs)
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    assert ctx.notes["schedule_per_tensor"] == sorted(schedules.SCHEDULES["authors40"])
    _, count = methods.schedule_pruned_count(model, ctx.schedule)
    assert n_pruned(ours) == count


def test_per_tensor_and_pooled_rates_differ_where_magnitudes_differ(tiny_whisper):
    with torch.no_grad():
        tiny_whisper.model.decoder.layers[0].fc1.weight.mul_(100.0)  # one tensor of much larger weights
    pooled = compute_masks(tiny_whisper, "schedule", "all", None, context=PruneContext(schedule={"dec_ffn": schedules.Rate(0.5)}))
    per = compute_masks(tiny_whisper, "schedule", "all", None, context=PruneContext(schedule={"dec_ffn": schedules.Rate(0.5, True)}))
    big = "model.decoder.layers.0.fc1.weight"
    assert int((~per[big]).sum()) == round(0.5 * per[big].numel())
    assert int((~pooled[big]).sum()) < round(0.1 * pooled[big].numel())  # pooled: the large tensor is spared
    assert n_pruned(pooled) == n_pruned(per)


def random_fisher(model, seed=0):
    """A Fisher whose scale differs by component, so the allocation has something to find."""
    g = torch.Generator().manual_seed(seed)
    scale = {"enc_self_attn": 1.0, "enc_ffn": 50.0, "dec_self_attn": 0.01, "dec_cross_attn": 3.0, "dec_ffn": 200.0, "conv": 10.0}
    out = {}
    for n, p in model.named_parameters():
        comp = methods.classify(n).component
        out[n] = torch.rand(p.shape, generator=g) * scale.get(comp, 1.0)
    return out


@pytest.mark.parametrize("method", ["allocate", "allocate_thirds"])
@pytest.mark.parametrize("sparsity", [0.1, 0.4, 0.73])
def test_allocate_meets_the_budget_and_beats_uniform(tiny_whisper, method, sparsity):
    ctx = PruneContext(fisher=random_fisher(tiny_whisper))
    masks = compute_masks(tiny_whisper, method, "all", sparsity, context=ctx)
    all_matrices = target_tensors(tiny_whisper, "all")
    assert set(masks) == set(all_matrices)
    assert n_pruned(masks) == round(sparsity * n_total(masks))
    alloc = ctx.notes["allocation"]
    assert alloc["predicted_damage"] <= alloc["uniform_predicted_damage"]
    # The damage reported is the damage of the masks actually made.
    params = dict(tiny_whisper.named_parameters())
    actual = sum(float((0.5 * ctx.fisher[n].double() * params[n].detach().double() ** 2)[~m].sum()) for n, m in masks.items())
    assert actual == pytest.approx(alloc["predicted_damage"], rel=1e-9)
    if method == "allocate":
        units = alloc["units"]
        assert units["dec_self_attn"]["sparsity"] >= units["dec_ffn"]["sparsity"]


def test_allocate_damage_curve_is_the_damage_of_the_magnitude_masks(tiny_whisper):
    from asrprune import damage

    fisher = random_fisher(tiny_whisper)
    params = {n: p.detach() for n, p in tiny_whisper.named_parameters()}
    names = target_tensors(tiny_whisper, "dec_ffn")
    unit = allocation.damage_unit("dec_ffn", names, methods.parameters(tiny_whisper), fisher)
    assert unit.numel == sum(params[n].numel() for n in names)
    for s in (0.25, 0.5):
        keep = compute_masks(tiny_whisper, "magnitude", "dec_ffn", s)
        measured = sum(damage.predicted_damage_per_tensor(fisher, params, {n: ~m for n, m in keep.items()}).values())
        assert unit.damage(round(s * unit.numel)) == pytest.approx(measured, rel=1e-9)


def test_allocate_without_fisher_is_refused(tiny_whisper):
    with pytest.raises(ValueError, match="fisher"):
        compute_masks(tiny_whisper, "allocate", "all", 0.4, context=PruneContext())


def fake_batch(model, seed=0, lengths=(7, 4)):
    g = torch.Generator().manual_seed(seed)
    b, width = len(lengths), max(lengths)
    feats = torch.randn(b, model.config.num_mel_bins, 2 * model.config.max_source_positions, generator=g)
    ids = torch.randint(0, model.config.vocab_size - 4, (b, width), generator=g)
    labels = torch.full((b, width), IGNORE_INDEX)
    for i, n in enumerate(lengths):
        ids[i, n:] = model.config.eos_token_id
        labels[i, 1:n] = ids[i, 1:n]  # the first position stands for the forced prompt
    return Batch([f"u{i}" for i in range(b)], [""] * b, [1.0] * b, feats, ids, labels)


def test_activation_norms_count_real_positions_only(tiny_whisper):
    names = ["model.encoder.conv1.weight", "model.decoder.layers.0.self_attn.q_proj.weight",
             "model.decoder.layers.1.encoder_attn.k_proj.weight", "model.encoder.layers.0.fc2.weight"]
    batch = fake_batch(tiny_whisper)
    norms = input_activation_norms(tiny_whisper, [batch], names)
    expected_conv = batch.input_features.double().pow(2).sum(dim=(0, 2)).sqrt().float()
    assert torch.allclose(norms["model.encoder.conv1.weight"], expected_conv, rtol=1e-5)
    # Causal decoder: one row alone, truncated to its real tokens, sees the same activations.
    rows = []
    for i, n in enumerate((7, 4)):
        one = Batch(["x"], [""], [1.0], batch.input_features[i : i + 1], batch.decoder_input_ids[i : i + 1, :n],
                    batch.labels[i : i + 1, :n])
        rows.append(input_activation_norms(tiny_whisper, [one], names))
    for name in names:
        combined = (rows[0][name].double() ** 2 + rows[1][name].double() ** 2).sqrt().float()
        assert torch.allclose(norms[name], combined, rtol=1e-4, atol=1e-6), name


def test_wanda_prunes_each_row_exactly_and_uses_the_activations(tiny_whisper):
    names = target_tensors(tiny_whisper, "enc")
    flat = {n: torch.ones(dict(tiny_whisper.named_parameters())[n].shape[1]) for n in names}
    g = torch.Generator().manual_seed(0)
    skewed = {n: torch.rand(v.shape, generator=g) ** 4 for n, v in flat.items()}
    wanda = compute_masks(tiny_whisper, "wanda", "enc", 0.5, context=PruneContext(activation_norms=skewed))
    for name, m in wanda.items():
        rows = m.reshape(m.shape[0], -1)
        assert ((~rows).sum(dim=1) == round(0.5 * rows.shape[1])).all(), name
    # With equal input norms wanda is per-row magnitude; with skewed norms it differs.
    even = compute_masks(tiny_whisper, "wanda", "enc", 0.5, context=PruneContext(activation_norms=flat))
    for name, m in even.items():
        w = dict(tiny_whisper.named_parameters())[name].detach().abs().reshape(m.shape[0], -1)
        rows = m.reshape(m.shape[0], -1)
        assert all(w[r][~rows[r]].max() <= w[r][rows[r]].min() for r in range(rows.shape[0])), name
    assert any(not torch.equal(wanda[n], even[n]) for n in names)


def test_wanda_refuses_non_matrices(tiny_whisper):
    with pytest.raises(ValueError, match="Linear and Conv1d"):
        compute_masks(tiny_whisper, "wanda", "layernorm", 0.5, context=PruneContext(activation_norms={}))


def test_random_is_seeded(tiny_whisper):
    a = compute_masks(tiny_whisper, "random", "dec_ffn", 0.5, context=PruneContext(seed=1))
    b = compute_masks(tiny_whisper, "random", "dec_ffn", 0.5, context=PruneContext(seed=1))
    c = compute_masks(tiny_whisper, "random", "dec_ffn", 0.5, context=PruneContext(seed=2))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_embeddings_prune_the_tied_output_projection(tiny_whisper):
    from asrprune.masks import apply_masks

    masks = compute_masks(tiny_whisper, "magnitude", "embeddings", 0.5, context=PruneContext())
    assert "model.decoder.embed_tokens.weight" in masks and "proj_out.weight" not in masks
    apply_masks(tiny_whisper, masks)
    m = masks["model.decoder.embed_tokens.weight"]
    assert (tiny_whisper.proj_out.weight[~m] == 0).all()
    assert (tiny_whisper.proj_out.weight.detach().ne(0) == m).all()


@pytest.mark.parametrize(
    "vid,spec",
    [
        ("baseline", Variant("baseline")),
        ("magnitude-dec_self_attn-s50", Variant("magnitude", "dec_self_attn", 0.5)),
        ("global-all-s40", Variant("global", "all", 0.4)),
        ("allocate-all-s40", Variant("allocate", "all", 0.4)),
        ("wanda-dec_self_attn-s50", Variant("wanda", "dec_self_attn", 0.5)),
        ("magnitude-enc.l9-12-s50", Variant("magnitude", "enc.l9-12", 0.5)),
        ("uniform-enc_ffn.last_third-s7", Variant("uniform", "enc_ffn.last_third", 0.07)),
        ("schedule-authors40", Variant("schedule", "all", None, "authors40")),
        ("global-as-authors40", Variant("global", "all", None, "authors40")),
        ("allocate-as-paper_text", Variant("allocate", "all", None, "paper_text")),
    ],
)
def test_variant_ids_round_trip(vid, spec):
    assert Variant.parse(vid) == spec
    assert spec.id == vid


def test_every_percent_round_trips():
    for pct in range(101):
        vid = f"magnitude-dec_ffn-s{pct}"
        assert Variant.parse(vid).id == vid


@pytest.mark.parametrize("vid,needle", [("prune-all-s40", "prune"), ("magnitude-dec_selfattn-s50", "dec_selfattn"),
                                        ("magnitude-all", "cannot parse"), ("magnitude-all-s140", "s140")])
def test_bad_variant_ids_are_named(vid, needle):
    with pytest.raises(ValueError, match=needle):
        Variant.parse(vid)


def test_unknown_method_and_target_name_the_value_and_choices(tiny_whisper):
    with pytest.raises(ValueError, match=r"'obd'.*magnitude, global, uniform"):
        compute_masks(tiny_whisper, "obd", "all", 0.5)
    with pytest.raises(ValueError, match=r"'dec_mlp'.*enc_self_attn"):
        compute_masks(tiny_whisper, "magnitude", "dec_mlp", 0.5)
    with pytest.raises(ValueError, match=r"all, enc, dec, got 'dec_ffn'"):
        compute_masks(tiny_whisper, "global", "dec_ffn", 0.5)
    with pytest.raises(ValueError, match="fraction"):
        compute_masks(tiny_whisper, "magnitude", "dec_ffn", 50)


def random_unit(name, numel, rng):
    """A unit with a random non-decreasing damage curve (not necessarily convex)."""
    steps = torch.rand(numel, generator=rng, dtype=torch.float64) ** 3
    return allocation.Unit(name, [name], numel, torch.cat([torch.zeros(1, dtype=torch.float64), steps.cumsum(0)]))


def brute_force(units, budget, grid_step):
    """Least damage over every grid choice of all units but one filler, which takes the exact rest."""
    import itertools

    best = float("inf")
    for j, filler in enumerate(units):
        others = [u for i, u in enumerate(units) if i != j]
        for combo in itertools.product(*[allocation.grid_counts(u.numel, grid_step) for u in others]):
            rest = budget - sum(combo)
            if 0 <= rest <= filler.numel:
                best = min(best, sum(u.damage(k) for u, k in zip(others, combo)) + filler.damage(rest))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_allocate_counts_is_optimal_against_brute_force(seed):
    rng = torch.Generator().manual_seed(seed)
    n_units = 2 + seed % 3
    units = [random_unit(f"u{i}", int(torch.randint(5, 60, (1,), generator=rng)), rng) for i in range(n_units)]
    budget = int(torch.randint(0, sum(u.numel for u in units) + 1, (1,), generator=rng))
    grid_step = (0.25, 0.2, 0.1)[seed % 3]
    counts = allocation.allocate_counts(units, budget, grid_step)
    assert sum(counts.values()) == budget
    assert all(0 <= counts[u.name] <= u.numel for u in units)
    off_grid = [u for u in units if counts[u.name] not in allocation.grid_counts(u.numel, grid_step)]
    assert len(off_grid) <= 1
    got = sum(u.damage(counts[u.name]) for u in units)
    assert got == pytest.approx(brute_force(units, budget, grid_step), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method", ["global", "allocate"])
def test_matched_variants_prune_the_schedules_pool_and_count(tiny_whisper, method):
    schedule = schedules.resolve_schedule("authors40")
    sched_ctx = PruneContext(schedule=schedule)
    sched_masks = compute_masks(tiny_whisper, "schedule", "all", None, context=sched_ctx)
    ctx = PruneContext(schedule=schedule, fisher=random_fisher(tiny_whisper))
    masks = methods.variant_masks(tiny_whisper, Variant.parse(f"{method}-as-authors40"), ctx)
    assert set(masks) == set(sched_masks)  # the same tensors ...
    assert n_pruned(masks) == n_pruned(sched_masks) == ctx.notes["matched"]["pruned"]  # ... and the same count
    assert any(not torch.equal(masks[n], sched_masks[n]) for n in masks)  # only where differs
    if method == "allocate":
        assert "embeddings" in ctx.notes["allocation"]["units"]
        assert ctx.notes["allocation"]["predicted_damage"] <= ctx.notes["allocation"]["uniform_predicted_damage"]


def test_only_global_and_allocate_can_match_a_schedule():
    with pytest.raises(ValueError, match=r"'magnitude' cannot match"):
        Variant.parse("magnitude-as-authors40")


def test_authors40_on_real_tiny_en_prunes_the_count_its_shapes_give(tiny_en_dir):
    """Real tiny.en weights (d 384, 4+4 layers, FFN 1536, vocabulary 51,864): every tensor at its rate.

    Per tensor round(rate × size), summed by hand from the shapes: the weights cannot change the count,
    but a mis-mapped layer third, a missed tensor or a pooled threshold would.
    """
    from asrprune.models.load import load_model

    model, _ = load_model(tiny_en_dir)
    ctx = PruneContext(schedule=schedules.resolve_schedule("authors40"))
    masks = compute_masks(model, "schedule", "all", None, context=ctx)
    ffn, attn, emb = 384 * 1536, 384 * 384, 51864 * 384
    expected = (
        8 * round(0.50 * ffn)  # encoder FFN: 4 layers × fc1, fc2
        + 2 * round(0.25 * ffn) + 4 * round(0.45 * ffn) + 2 * round(0.30 * ffn)  # decoder FFN: layer 0 | 1-2 | 3
        + 16 * round(0.40 * attn)  # encoder self-attention q, k, v, out
        + 16 * round(0.50 * attn)  # decoder self-attention
        + 16 * round(0.45 * attn)  # cross-attention
        + round(0.25 * emb)  # token embedding = output projection
        + round(0.30 * 384 * 80 * 3) + round(0.30 * 384 * 384 * 3)  # conv1, conv2
    )
    assert expected == 12_394_128
    assert n_pruned(masks) == expected
    for name, mask in masks.items():  # and each tensor at its own rate
        pool = next(t for t, p in ctx.notes["schedule_pools"].items() if p["tensors"] and name in target_tensors(model, t, allow_empty=True))
        assert int((~mask).sum()) == round(schedules.SCHEDULES["authors40"][pool].sparsity * mask.numel()), name
