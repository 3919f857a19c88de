"""Weights only through safetensors: nothing in asrprune/ or scripts/ can unpickle a file.

A source scan (the AST of every module, a text scan of the Snakefile and rules): no pickle-family
import or load, no `torch.load`, no `np.load(..., allow_pickle=True)`, no `pd.read_pickle`, and every
model `from_pretrained` passes `use_safetensors=True` (tokenizer and feature-extractor
`from_pretrained` read JSON only).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "asrprune").rglob("*.py"), *(REPO / "scripts").glob("*.py")])
WORKFLOW = sorted([REPO / "Snakefile", *(REPO / "rules").glob("*.smk")])
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
MODEL_CLASS = re.compile(r"(ForConditionalGeneration|^AutoModel|Model$|PreTrainedModel)")


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def violations(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            found.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "torch" and any(a.name == "load" for a in node.names):
            found.append(f"{line}: from torch import load")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("torch.load", "torch.hub.load", "pd.read_pickle", "pandas.read_pickle") or (
                name.split(".")[0] in PICKLERS
            ):
                found.append(f"{line}: {name}(...)")
            elif name in ("np.load", "numpy.load"):
                allow = keywords.get("allow_pickle")
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(f"{line}: {name}(...) without allow_pickle=False")
            elif name.endswith(".from_pretrained") and MODEL_CLASS.search(name.rsplit(".", 2)[-2]):
                flag = keywords.get("use_safetensors")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    found.append(f"{line}: {name}(...) without use_safetensors=True")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_no_module_can_unpickle(path):
    assert violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))) == []


@pytest.mark.parametrize("path", WORKFLOW, ids=[str(p.relative_to(REPO)) for p in WORKFLOW])
def test_the_workflow_files_do_not_unpickle(path):
    text = path.read_text(encoding="utf-8")
    assert not re.findall(r"\b(torch\.load|pickle\.loads?|joblib\.load|read_pickle|allow_pickle\s*=\s*True)\b", text)


@pytest.mark.parametrize("source,bad", [
    ("import torch\nsd = torch.load('w.pt')\n", "torch.load"),
    ("import pickle\n", "import pickle"),
    ("from pickle import load\n", "from pickle import"),
    ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n", "allow_pickle"),
    ("from transformers import WhisperForConditionalGeneration as W\n"
     "m = WhisperForConditionalGeneration.from_pretrained('x')\n", "use_safetensors"),
    ("import pandas as pd\npd.read_pickle('x')\n", "read_pickle"),
])
def test_the_scan_catches_each_pattern(source, bad):
    assert any(bad in v for v in violations(source, "example.py"))


def test_the_scan_allows_safe_loading():
    safe = ("from safetensors.torch import load_file\nw = load_file('m.safetensors')\n"
            "m = WhisperForConditionalGeneration.from_pretrained('x', use_safetensors=True)\n"
            "p = WhisperProcessor.from_pretrained('x')\nimport numpy as np\nnp.load('a.npy', allow_pickle=False)\n")
    assert violations(safe, "example.py") == []
