"""The top-level modules import one way, each only from the layers below its own: no cycle,
and no import tucked into a function to dodge one. Read with ast; nothing is imported."""

import ast
import os

from conftest import ROOT

LAYERS = [
    ["flags", "model", "tokenizer", "dpo", "sandbox", "forms", "stats"],  # nothing of the project
    ["codehack", "checkpoint", "engine"],  # the world; checkpoints; text <-> tensors (engine)
    ["common", "conscience"],  # train.py's plumbing; the mechanism
    ["controls", "evaluate"],  # the controls beside the mechanism; the ground-truth metrics
    ["repe"],  # the representation-engineering baseline (train.py trains with its control)
    ["train", "sample"],  # the scripts
    ["experiment"],  # runs train.py and evaluate.py
]
LAYER = {module: i for i, layer in enumerate(LAYERS) for module in layer}


def project_imports(module):
    """The project modules that module imports anywhere in its file (functions included)."""
    tree = ast.parse(open(os.path.join(ROOT, f"{module}.py")).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYER)


def test_every_top_level_module_has_a_layer():
    modules = {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}
    assert modules == set(LAYER)


def test_imports_go_down_the_layers_only():
    upward = [f"{m} (layer {LAYER[m]}) imports {n} (layer {LAYER[n]})"
              for m in LAYER for n in sorted(project_imports(m)) if LAYER[n] >= LAYER[m]]
    assert upward == []


def test_no_cycle():
    graph = {m: project_imports(m) for m in LAYER}
    done, path = set(), []

    def visit(m):  # depth first; a module met again on the current path closes a cycle
        assert m not in path, " -> ".join(path[path.index(m):] + [m])
        if m not in done:
            path.append(m)
            for n in graph[m]:
                visit(n)
            path.pop()
            done.add(m)
    for m in graph:
        visit(m)


def test_sample_is_a_leaf_and_only_the_scripts_use_evaluate():
    importers = lambda target: {m for m in LAYER if target in project_imports(m)}  # noqa: E731
    assert importers("sample") == set()
    assert importers("evaluate") <= {"train", "repe", "experiment"}
    assert importers("train") <= {"experiment"}
