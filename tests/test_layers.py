"""The library's shape: every module sits on one layer and imports only from its own layer or the ones
below, with no loop anywhere (docs/method.md, "Code layout"). Every import statement counts: at the
top, inside a function, under TYPE_CHECKING. A new module must be given its layer here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asrprune"

# Bottom to top. A module may import from its own layer and those below it, never from above.
LAYERS: dict[str, tuple[str, ...]] = {
    # settings and types: what everything else reads, importing nothing of the library
    "base": ("asrprune", "settings", "strict_yaml", "job", "io", "components"),
    # the planning vocabulary, torch-free: schedules, variant ids and the method registry
    "vocabulary": ("schedules", "variants"),
    # values in, values out, side by side, no file I/O
    "numerical": (
        "audio", "metrics", "stats", "flops", "damage", "encoder", "greedy", "generation", "allocation",
        "methods", "labels", "sensitivity", "activations", "batches", "claims", "claim_verdicts", "findings", "tables",
        "datasets.schema", "datasets.degradations", "datasets.sentences",
    ),
    # the workflow's formats and sources: each reads or writes one kind of file (or drives the encoder
    # cache on disk), for the stages
    "formats": (
        "ct2", "ct2_convert", "models", "models.packages", "models.checkpoint", "models.sources",
        "models.prepare", "models.load", "masks", "encoder_cache", "encoder_states", "decode", "plots",
        "usage", "claims_file", "datasets", "datasets.manifest", "datasets.external", "datasets.offline", "datasets.tts",
        "datasets.overlap",
    ),
    # which jobs, with which params (rules/common.smk calls these; none runs a stage)
    "planning": ("config", "preflight", "layout", "plan"),
    # one module per rule, each `run(job)`: every read and write of a job
    "stages": ("stages", "stages.*"),
    # process set-up and `run_stage`, the whole of every scripts/NAME.py
    "runtime": ("runtime",),
}
ORDER = list(LAYERS)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(f): f for f in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The library modules `name` imports, wherever the import statement sits."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `from asrprune import masks` names a module; `from x import f`, x
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                out.add(t)
    return out


def layer_of(name: str) -> str:
    short = name.removeprefix("asrprune.") if name != "asrprune" else "asrprune"
    for layer, members in LAYERS.items():
        for m in members:
            if short == m or (m.endswith(".*") and short.startswith(m[:-1])):
                return layer
    raise AssertionError(f"{name}: no layer; give it one in tests/test_layers.py (LAYERS)")


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in edges.items():
        for dst in targets:
            if ORDER.index(layer_of(dst)) > ORDER.index(layer_of(src)):
                bad.append(f"{src} ({layer_of(src)}) imports {dst} ({layer_of(dst)})")
    return sorted(bad)


def loops(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_points_up():
    assert upward_imports(graph()) == []


def test_no_import_loops():
    assert loops(graph()) == []


def test_the_check_sees_function_level_and_type_checking_imports(tmp_path):
    """The checks fail on the shapes they guard against (a stage imported from below, a loop)."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from asrprune.stages import decode\n" \
             "def f():\n    from asrprune.runtime import run_stage\n"
    path = tmp_path / "stats.py"
    path.write_text(source)
    found = imports("asrprune.stats", path, {"asrprune.stages", "asrprune.stages.decode", "asrprune.runtime"})
    # importing a submodule runs its package too
    assert found == {"asrprune.stages", "asrprune.stages.decode", "asrprune.runtime"}
    bad = upward_imports({"asrprune.stats": found, **{m: set() for m in found}})
    assert len(bad) == 3 and bad[0].startswith("asrprune.stats (numerical) imports asrprune.runtime (runtime)")
    assert loops({"asrprune.greedy": {"asrprune.decode"}, "asrprune.decode": {"asrprune.greedy"}}) == [
        ["asrprune.decode", "asrprune.greedy"]
    ]


def test_relative_imports_resolve(tmp_path):
    path = tmp_path / "external.py"
    path.write_text("from .manifest import read_manifest_rows\nfrom .. import io\n")
    known = {"asrprune", "asrprune.io", "asrprune.datasets", "asrprune.datasets.manifest"}
    found = imports("asrprune.datasets.external", path, known)
    assert found == {"asrprune", "asrprune.datasets.manifest", "asrprune.io"}


@pytest.mark.parametrize("layer", ORDER)
def test_layers_name_existing_modules(layer):
    """No stale entry: every named module exists (a split or rename updates this map)."""
    names = {m.removeprefix("asrprune.") if m != "asrprune" else m for m in modules()}
    for m in LAYERS[layer]:
        if not m.endswith(".*"):
            assert m in names, f"LAYERS[{layer!r}] names {m!r}, which is no module of asrprune/"
