"""The package's shape, read with ``ast``: layers that only look down, no import circle, small files and functions.

Layers (top → bottom, DESIGN.md): views > analysis > orchestration > training > things > ground.
A module may import its own layer or any layer below; every kdlib import counts, also
one inside a function (a late import still runs the other way).
"""
from __future__ import annotations

import ast
from pathlib import Path

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"
LAYERS = ("ground", "things", "training", "orchestration", "analysis", "views")  # bottom → top
LAYER_OF = {  # module (or package) -> layer; a package's modules share its layer
    "kdlib": "views",  # the package itself: ``kdlib.advise`` resolves lazily to the advisor
    "kdlib.widgets": "views", "kdlib.plots": "views",
    "kdlib.analysis": "analysis", "kdlib.reports": "analysis", "kdlib.profiles": "analysis",
    "kdlib.findings": "analysis", "kdlib.advisor": "analysis", "kdlib.bench": "analysis",
    "kdlib.runs": "orchestration", "kdlib.executors": "orchestration", "kdlib.cluster": "orchestration",
    "kdlib.jobs": "orchestration", "kdlib.studies": "orchestration",
    "kdlib.train": "training", "kdlib.losses": "training", "kdlib.metrics": "training",
    "kdlib.specs": "things", "kdlib.parameters": "things", "kdlib.data": "things", "kdlib.models": "things",
    "kdlib.traits": "things",
    "kdlib.store": "ground", "kdlib.io": "ground", "kdlib.paths": "ground", "kdlib.checks": "ground",
    "kdlib.device": "ground", "kdlib.provenance": "ground",
}
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def module_name(path: Path) -> str:
    parts = path.relative_to(KDLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    name = module
    while name not in LAYER_OF:
        if "." not in name:
            raise AssertionError(f"{module} belongs to no layer; add it to LAYER_OF in tests/test_layout.py")
        name = name.rsplit(".", 1)[0]
    return LAYER_OF[name]


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


def test_every_module_belongs_to_a_layer_and_imports_only_its_own_or_lower_layers():
    upward = []
    for name, imported in graph().items():
        for other in sorted(imported):
            if LAYERS.index(layer(other)) > LAYERS.index(layer(name)):
                upward.append(f"{name} ({layer(name)}) imports {other} ({layer(other)})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_import_graph_has_no_circle():
    g = graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(g[node]):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules: the package re-exports them
            if seen.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in seen and (found := visit(nxt, path + [node])):
                return found
        seen[node] = 2
        return None

    for start in sorted(g):
        if start not in seen and (circle := visit(start, [])):
            raise AssertionError("import circle: " + " -> ".join(circle[circle.index(circle[-1]):]))


def test_no_kdlib_file_is_over_400_lines_and_no_function_over_60():
    long_files, long_functions = [], []
    for path in sorted(KDLIB.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(KDLIB.parent)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(KDLIB.parent)}:{node.lineno} {node.name}: {lines} lines")
    assert not long_files and not long_functions, "\n".join(long_files + long_functions)


def test_the_layout_test_sees_a_planted_upward_import(tmp_path):
    planted = ast.parse("def f():\n    from kdlib import plots\n")
    assert kdlib_imports("kdlib.store", planted, {"kdlib.plots", "kdlib.store"}) == {"kdlib.plots"}
    assert LAYERS.index(layer("kdlib.plots")) > LAYERS.index(layer("kdlib.store"))
