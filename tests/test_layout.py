"""The package's shape, read with ``ast``: layers that only look down, no import circle, small files and functions.

Layers (top → bottom, DESIGN.md): views > analysis > orchestration > training > things > ground.
A module may import its own layer or any layer below; every kdlib import counts, also
one inside a function (a late import still runs the other way).
"""
from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"
LAYERS = ("ground", "things", "training", "orchestration", "analysis", "views")  # bottom → top
LAYER_OF = {  # module (or package) -> layer; a package's modules share its layer
    "kdlib": "views",  # the package itself: ``kdlib.advise`` resolves lazily to the advisor
    "kdlib.widgets": "views", "kdlib.plots": "views", "kdlib.display": "views", "kdlib.advisor_plots": "views",
    "kdlib.analysis": "analysis", "kdlib.reports": "analysis", "kdlib.profiles": "analysis",
    "kdlib.findings": "analysis", "kdlib.advisor": "analysis", "kdlib.bench": "analysis",
    "kdlib.bench_grid": "analysis", "kdlib.bench_store": "analysis",
    "kdlib.runs": "orchestration", "kdlib.executors": "orchestration", "kdlib.cluster": "orchestration",
    "kdlib.jobs": "orchestration", "kdlib.inflight": "orchestration", "kdlib.studies": "orchestration", "kdlib.scheduler": "orchestration",
    "kdlib.preflight": "orchestration",
    "kdlib.train": "training", "kdlib.losses": "training", "kdlib.metrics": "training",
    "kdlib.members": "training", "kdlib.cadence": "training", "kdlib.logit_cache": "training", "kdlib.evaluation": "training",
    "kdlib.specs": "things", "kdlib.parameters": "things", "kdlib.data": "things", "kdlib.models": "things",
    "kdlib.traits": "things", "kdlib.presets": "things", "kdlib.tables": "things", "kdlib.methods": "things",
    "kdlib.store": "ground", "kdlib.history": "ground", "kdlib.store_index": "ground", "kdlib.records": "ground", "kdlib.io": "ground", "kdlib.paths": "ground", "kdlib.checks": "ground",
    "kdlib.device": "ground", "kdlib.provenance": "ground", "kdlib.lease": "ground", "kdlib.numerics": "ground",
}
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def module_name(path: Path) -> str:
    parts = path.relative_to(KDLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    name = module
    while name not in LAYER_OF:
        if name.count(".") < 2 and name != "kdlib":
            raise AssertionError(f"{module} belongs to no layer; add it to LAYER_OF in tests/test_layout.py")
        name = name.rsplit(".", 1)[0]
    return LAYER_OF[name]


@functools.lru_cache(maxsize=1)  # parsed once per session: the tests read the same files
def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(KDLIB.rglob("*.py"))}


def kdlib_imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The kdlib modules ``name`` imports (``from kdlib import x`` names module ``kdlib.x`` when it is one)."""
    package = name if (KDLIB.parent / name.replace(".", "/") / "__init__.py").is_file() else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("kdlib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("kdlib"):
                continue
            subs = {f"{base}.{a.name}" for a in node.names} & known
            out |= subs or {base}
    out.discard(name)
    return {m for m in out if m != "kdlib" or name == "kdlib"}


def graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees)
    return {name: {m for m in kdlib_imports(name, tree, known) if m in known} for name, tree in trees.items()}


def upward_imports() -> set[str]:
    return {f"{name} imports {other}" for name, imported in graph().items() for other in imported
            if LAYERS.index(layer(other)) > LAYERS.index(layer(name))}


def test_every_module_belongs_to_a_layer_and_imports_only_its_own_or_lower_layers():
    found = upward_imports()
    assert not found, "imports that run upward:\n" + "\n".join(sorted(found))



def circles() -> set[frozenset[str]]:
    """The modules that import each other round in a circle: strongly connected groups of two or more."""
    g = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in graph().items()}  # a module's own package: no tie
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.add(frozenset(group))

    for v in sorted(g):
        if v not in index:
            connect(v)
    return found


def test_the_import_graph_has_no_circle():
    found = [sorted(c) for c in circles()]
    assert not found, f"import circles: {found}"


def test_no_kdlib_file_is_over_400_lines_and_no_function_over_60():
    long_files, long_functions = [], []
    for path in sorted(KDLIB.rglob("*.py")):
        text = path.read_text()
        rel = str(path.relative_to(KDLIB.parent))
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(rel)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.name}")
    found = set(long_files) | set(long_functions)
    assert not found, f"files over {MAX_FILE_LINES} or functions over {MAX_FUNCTION_LINES} lines: {sorted(found)}"



def test_the_layout_test_sees_a_planted_upward_import_and_a_planted_circle(monkeypatch):
    planted = ast.parse("def f():\n    from kdlib import plots\n")
    assert kdlib_imports("kdlib.store", planted, {"kdlib.plots", "kdlib.store"}) == {"kdlib.plots"}
    assert LAYERS.index(layer("kdlib.plots")) > LAYERS.index(layer("kdlib.store"))
    real = graph()
    monkeypatch.setattr(__import__(__name__), "graph", lambda: {**real, "kdlib.paths": real["kdlib.paths"] | {"kdlib.analysis"},
                                                                 "kdlib.analysis": real["kdlib.analysis"] | {"kdlib.paths"}})
    assert "kdlib.paths imports kdlib.analysis" in upward_imports()
    assert any({"kdlib.analysis", "kdlib.paths"} <= c for c in circles())


def test_the_readme_library_table_names_every_module_in_its_layer():
    text = (KDLIB.parent / "README.md").read_text()
    table = {}
    for line in text[text.index("| layer | module | owns |"):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in cells[1].replace("`", "").split(","):
            table[name.strip()] = cells[0]
    top = {module_name(p) for p in KDLIB.glob("*.py")} | {module_name(p.parent) for p in KDLIB.glob("*/__init__.py")}
    top.discard("kdlib")
    assert set(table) == top, f"README lacks {sorted(top - set(table))}, names gone {sorted(set(table) - top)}"
    assert {m: layer(m) for m in top} == table


# Everything that importing a module could change for the whole process. The third-party
# libraries kdlib uses are imported first, so that only kdlib's own import-time work counts.
GLOBAL_STATE = r"""
import json, logging, os, random, signal, sys, warnings
import altair as alt, numpy as np, pandas as pd, scipy.special, scipy.stats, submitit, timm, torch, torchvision, tqdm

def state():
    return {"environ": dict(os.environ), "warnings": [repr(f) for f in warnings.filters],
            "random": repr(random.getstate()), "numpy random": repr(np.random.get_state()[1][:8]),
            "torch rng": torch.get_rng_state().sum().item(), "torch threads": torch.get_num_threads(),
            "torch dtype": str(torch.get_default_dtype()), "deterministic": torch.are_deterministic_algorithms_enabled(),
            "grad": torch.is_grad_enabled(), "matmul": torch.get_float32_matmul_precision(),
            "altair renderer": alt.renderers.active, "cwd": os.getcwd(), "sys.path": list(sys.path),
            "signals": {s.name: repr(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)},
            "logging": [repr(h) for h in logging.getLogger().handlers] + [logging.getLogger().level],
            "pandas": {k: repr(pd.get_option(k)) for k in ("display.max_rows", "display.width")}}

before = state()
import importlib, pkgutil
import kdlib
names = [m.name for m in pkgutil.walk_packages(kdlib.__path__, "kdlib.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
after = state()
print(json.dumps({"modules": len(names), "changed": {k: [before[k], after[k]] for k in before if before[k] != after[k]}},
                 default=str))
"""


@pytest.mark.slow
def test_importing_every_kdlib_module_changes_no_global_state():
    out = subprocess.run([sys.executable, "-c", GLOBAL_STATE], capture_output=True, text=True, timeout=600,
                         cwd=KDLIB.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["modules"] >= len(list(KDLIB.rglob("*.py"))) - 3  # every module was imported (less the __main__s)
    assert found["changed"] == {}
