"""The house rules, checked on the source: layers import only downward, nothing under src/ imports
benchmarks/, only backbones/ touches model internals, and the old import paths still work."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "anytask"
LAYERS = ["core", "backbones", "data", "methods", "experiments", "apps"]
# calls into a transformer's forward or submodules; only anytask.backbones may make them
INTERNALS = re.compile(r"\bfrom transformers\b|\bimport transformers\b|last_hidden_state|functional_call|"
                       r"\.encoder\.layer|\.embeddings\.|get_input_embeddings|register_forward_(pre_)?hook|torch\.func")


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        yield path, rel.parts[0] if len(rel.parts) > 1 else None


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_layers_only_import_downward_and_never_from_benchmarks():
    bad = []
    for path, layer in _modules():
        if layer not in LAYERS:
            continue
        for name in _imports(path):
            if name.split(".")[0] == "benchmarks":
                bad.append(f"{path.relative_to(SRC)} imports {name}")
            parts = name.split(".")
            if parts[0] == "anytask" and len(parts) > 1 and parts[1] in LAYERS:
                if LAYERS.index(parts[1]) > LAYERS.index(layer):
                    bad.append(f"{path.relative_to(SRC)} ({layer}) imports {name} (a higher layer)")
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_old_paths():
    from anytask._compat import MOVED

    bad = [f"{path.relative_to(SRC)} imports {name}" for path, _ in _modules() if path.name != "_compat.py"
           for name in _imports(path) if any(name == old or name.startswith(old + ".") for old in MOVED)]
    assert not bad, "\n".join(bad)


def test_only_backbones_touch_model_internals():
    bad = [f"{path.relative_to(SRC)}: {m.group(0)}" for path, layer in _modules() if layer != "backbones"
           for m in [INTERNALS.search(path.read_text(encoding="utf-8"))] if m]
    assert not bad, "\n".join(bad)


def _module_name(path: Path) -> str:
    parts = ("anytask", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_between_modules():
    """Module-level imports (not those inside functions) form no cycle. A submodule importing its own
    package, and a package importing its own submodules, are how packages work and are not counted."""
    known = {_module_name(p) for p, _ in _modules()}
    graph = {}
    for path, _ in _modules():
        me = _module_name(path)
        edges = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # top level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")  # importing a.b.c runs a.b's __init__ first: count those too
                for target in {".".join(parts[:i]) for i in range(2, len(parts) + 1)}:
                    if target in known and target != me and not me.startswith(target + ".") \
                            and not target.startswith(me + "."):
                        edges.add(target)
        graph[me] = edges
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        for n in graph.get(m, ()):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_old_import_paths_are_deprecated_aliases_of_the_new_modules():
    import importlib

    with pytest.warns(DeprecationWarning, match="anytask.methods.heads"):
        old = importlib.import_module("anytask.heads.centroid")
    new = importlib.import_module("anytask.methods.heads.centroid")
    assert old is new and old.__name__ == "anytask.methods.heads.centroid"
    assert new.__spec__.name == "anytask.methods.heads.centroid"  # the real module keeps its own spec


def test_folders_saved_under_the_old_class_paths_still_load(tmp_path, blobs):
    import json

    import numpy as np

    from anytask.core import io
    from anytask.methods.heads import create_head

    X, y = blobs
    folder = io.save(create_head("centroid").fit(X, y), tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    assert config["class"] == "anytask.methods.heads.centroid:Centroid"
    config["class"] = "anytask.heads.centroid:Centroid"  # as 0.1 wrote it: format 1, no config checksum
    config["format"] = 1
    del config["config_sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(io.load(folder).predict(X), y)


def test_common_names_import_from_the_package():
    import anytask

    from anytask import TextClassifier, create_head, io, load, save  # noqa: F401

    assert anytask.io.save is save and callable(create_head)
