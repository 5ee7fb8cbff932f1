"""Notebook parameters: refuse a bad parameters cell before anything trains.

papermill passes any value through and only *warns* on a name the notebook does not
declare, and its ``-p`` passes a list as a string (``-p datasets '["cifar100"]'``). So
each study notebook calls ``parameters.check(globals())`` in the cell right after its
``parameters`` cell: it fails at once on an injected name the notebook does not declare,
parses list/dict text given with ``-p`` (JSON or YAML), then checks each value by its
conventional name (``check_parameters``). It works in plain Jupyter too (nothing
injected: only the values are checked).
"""
from __future__ import annotations

import ast
import difflib
import json
from typing import Any, Callable, MutableMapping, Sequence

from kdlib import checks, methods, specs

EXECUTORS = specs.EXECUTORS
TEACHER_ORIGINS = ("finetuned", "scratch")
# The corpora a teacher's general pretraining can use, per preset (the paper preset uses timm's
# ImageNet-1K weights; its no-overlap case is a dataset of its own: cars, finer-birds).
PRETRAIN_CORPORA = {"mini": ("fmnist-general", "fmnist-general-coarse"), "paper": ()}
INJECTED_HEADER = "# Parameters"  # papermill's first line of the cell it injects (tag injected-parameters)


# ----------------------------------------------------------------------------- value rules



def _check_list(name: str, value: Any, what: str, ok, allowed: Sequence[Any] | None = None,
                example: str = "") -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ValueError(f"parameter {name}={value!r} must be a non-empty list of {what}"
                         f"{f', e.g. {example}' if example else ''}")
    bad = [v for v in value if not ok(v)]
    if bad:
        hint = f"; allowed: {list(allowed)}" if allowed is not None else ""
        raise ValueError(f"parameter {name}={list(value)!r}: {bad!r} {'is' if len(bad) == 1 else 'are'} not "
                         f"{what}{hint}")


def _check_names(name: str, value: Any, allowed: Sequence[str], what: str) -> None:
    _check_list(name, value, what, lambda v: isinstance(v, str) and v in allowed, allowed,
                example=repr(list(allowed[:1])))


def _need_preset(name: str, preset_name: str | None) -> str:
    if preset_name is None:
        raise ValueError(f"parameter {name} is checked against a preset, but preset=None; set preset to one of "
                         f"{sorted(specs.PRESETS)}")
    return preset_name


def _dataset_ok(preset_name: str) -> Callable[[Any], bool]:
    from kdlib import data
    known = data.dataset_names(preset_name)
    return lambda v: isinstance(v, str) and (v in known or (v.startswith("imagefolder:") and len(v) > 12))


def _check_datasets(name: str, value: Any, p: str | None) -> None:
    from kdlib import data
    p = _need_preset(name, p)
    known = data.dataset_names(p)
    _check_list(name, value, f"dataset names of preset {p!r} (or 'imagefolder:<path>')", _dataset_ok(p),
                known, example=repr(known[-2:]))


def _check_dataset(name: str, value: Any, p: str | None) -> None:
    from kdlib import data
    p = _need_preset(name, p)
    if not _dataset_ok(p)(value):
        raise ValueError(f"parameter {name}={value!r} must be a dataset name of preset {p!r} or "
                         f"'imagefolder:<path>'; allowed: {data.dataset_names(p)}")


def _check_archs(name: str, value: Any, p: str | None) -> None:
    from kdlib import models
    p = _need_preset(name, p)
    _check_names(name, value, models.arch_names(p), f"model names of preset {p!r}")


def _check_arch(name: str, value: Any, p: str | None) -> None:
    from kdlib import models
    allowed = models.arch_names(_need_preset(name, p))
    if value not in allowed:
        raise ValueError(f"parameter {name}={value!r} must be a model name of preset {p!r}; allowed: {allowed}")


def _check_epochs(name: str, value: Any, p: str | None) -> None:
    if value is not None and not (checks.is_int(value) and value >= 1):
        raise ValueError(f"parameter {name}={value!r} must be None (the preset's default) or an integer >= 1")


def _check_seed(name: str, value: Any, p: str | None) -> None:
    if not (checks.is_int(value) and value >= 0):
        raise ValueError(f"parameter {name}={value!r} must be an integer >= 0")


def _check_minimum(name: str, value: Any, p: str | None) -> None:
    if not (checks.is_int(value) and value >= 1):
        raise ValueError(f"parameter {name}={value!r} must be an integer >= 1")


def _check_executor(name: str, value: Any, p: str | None) -> None:
    if value not in EXECUTORS:
        raise ValueError(f"parameter executor={value!r}; choose one of {list(EXECUTORS)}")


def _check_dict(example: str) -> Callable[[str, Any, str | None], None]:
    def check(name: str, value: Any, p: str | None) -> None:
        if not isinstance(value, dict):
            raise ValueError(f"parameter {name}={value!r} must be a dict, e.g. {example} ({{}} for the defaults)")
    return check


def _check_folder(name: str, value: Any, p: str | None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"parameter {name}={value!r} must be a folder name (relative to outputs/) or a path")


def _check_store_root(name: str, value: Any, p: str | None) -> None:
    if value is not None:
        _check_folder(name, value, p)


def _check_tolerance(name: str, value: Any, p: str | None) -> None:
    if not (checks.is_number(value) and value >= 0):
        raise ValueError(f"parameter {name}={value!r} must be a number >= 0 (accuracy points)")


def _check_methods(name: str, value: Any, p: str | None) -> None:
    _check_names(name, value, methods.names(), "loss names")


def _check_corpora(name: str, value: Any, p: str | None) -> None:
    p = _need_preset(name, p)
    allowed = PRETRAIN_CORPORA.get(specs.world(p), ())
    if not isinstance(value, dict):
        raise ValueError(f"parameter pretrain_corpora={value!r} must be a dict: dataset -> list of pretraining "
                         f"corpora (None = the preset's), e.g. {{'fmnist-fine': ['fmnist-general', "
                         "'fmnist-general-coarse']}")
    for dataset, corpora in value.items():
        if not allowed and any(c is not None for c in (corpora if isinstance(corpora, list) else [corpora])):
            raise ValueError(f"parameter pretrain_corpora={value!r}: preset {p!r} pretrains with timm's "
                             "ImageNet-1K weights; compare datasets instead (e.g. imagenet-birds vs "
                             "finer-birds) and leave pretrain_corpora={}")
        _check_list(f"pretrain_corpora[{dataset!r}]", corpora, f"corpora of preset {p!r} or None",
                    lambda v: v is None or v in allowed, [*allowed, None])


def _list_rule(what: str, ok: Callable[[Any], bool], example: str) -> Callable[[str, Any, str | None], None]:
    return lambda name, value, p: _check_list(name, value, what, ok, example=example)


def _names_rule(allowed: Sequence[str], what: str) -> Callable[[str, Any, str | None], None]:
    return lambda name, value, p: _check_names(name, value, allowed, what)


_positive_numbers = _list_rule("numbers > 0", lambda v: checks.is_number(v) and v > 0, "[1, 4, 40]")
# (how a name matches, the pattern, its check); the first match wins.
RULES: list[tuple[str, str, Callable[[str, Any, str | None], None]]] = [
    ("is", "datasets", _check_datasets),
    ("is", "dataset", _check_dataset),
    ("is", "teachers", _check_archs),
    ("is", "students", _check_archs),
    ("suffix", "_arch", _check_arch),
    ("suffix", "temperatures", _positive_numbers),
    ("is", "seeds", _list_rule("integers >= 0", lambda v: checks.is_int(v) and v >= 0, "[0, 1, 2]")),
    ("is", "seed", _check_seed),
    ("is", "optimizers", _names_rule(specs.OPTIMIZERS, "optimizer names")),
    ("is", "batch_sizes", _list_rule("integers >= 1", lambda v: checks.is_int(v) and v >= 1, "[64, 256]")),
    ("is", "student_inits", _names_rule(specs.INITS, "student initializations")),
    ("is", "teacher_origins", _names_rule(TEACHER_ORIGINS, "teacher origins")),
    ("suffix", "_fractions", _list_rule("numbers > 0 (fractions of the baseline duration)",
                                        lambda v: checks.is_number(v) and v > 0, "[0.25, 0.5, 1, 2]")),
    ("suffix", "_ks", _list_rule("integers >= 1", lambda v: checks.is_int(v) and v >= 1, "[1, 3]")),
    ("suffix", "_epochs", _check_epochs),
    ("prefix", "min_", _check_minimum),
    ("is", "executor", _check_executor),
    ("is", "slurm", _check_dict("{'partition': 'gpu', 'timeout_min': 240}")),
    ("is", "method_args", _check_dict("{'dkd': {'beta': 2.0}}")),
    ("is", "methods", _check_methods),
    ("is", "output_dir", _check_folder),
    ("is", "store_root", _check_store_root),
    ("suffix", "tolerance", _check_tolerance),
    ("is", "pretrain_corpora", _check_corpora),
]


def _rule_for(name: str) -> Callable[[str, Any, str | None], None]:
    for how, pattern, rule in RULES:
        if (how == "is" and name == pattern) or (how == "suffix" and name.endswith(pattern)) \
                or (how == "prefix" and name.startswith(pattern)):
            return rule
    known = ", ".join(p if how == "is" else (f"*{p}" if how == "suffix" else f"{p}*") for how, p, _ in RULES)
    raise ValueError(f"check_parameters() has no rule for parameter {name!r}; known: {known}. "
                     "Rename it to a known convention or add a rule to kdlib.parameters.RULES")


def check_parameters(preset_name: str | None, /, **params: Any) -> None:
    """Check each notebook parameter by its conventional name; ValueError on the first bad one.

    Lists of names are checked against the preset (datasets, teachers, students, methods,
    ...), lists of numbers by range (``*temperatures`` > 0, seeds >= 0, batch sizes >= 1,
    ``*_fractions`` > 0), ``*_epochs`` (None or >= 1), executor, slurm, output_dir,
    ``*tolerance`` and pretrain_corpora. ``preset_name=None`` (notebook 07: every preset)
    allows only rules that need no preset.
    """
    if preset_name is not None:
        specs.preset(preset_name)
    if "datasets" in params:  # checked first: other rules (pretrain_corpora) refer to them
        _rule_for("datasets")("datasets", params["datasets"], preset_name)
    for name, value in params.items():
        _rule_for(name)(name, value, preset_name)
    corpora = params.get("pretrain_corpora")
    if isinstance(corpora, dict) and "datasets" in params:
        extra = sorted(set(corpora) - set(params["datasets"]))
        if extra:
            raise ValueError(f"pretrain_corpora names datasets {extra} that are not in datasets={params['datasets']}; "
                             "add them to datasets or drop them from pretrain_corpora")


# ----------------------------------------------------------------------------- the notebook's cells

def _literal_assignments(source: str) -> dict[str, Any] | None:
    """``name = literal`` pairs of a cell, or None when the cell is anything else (or not Python)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a bare string: a note, not a parameter
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) and node.value is not None else None
        if not isinstance(target, ast.Name):
            return None
        try:
            out[target.id] = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None
    return out


def find_cells(history: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(declared, injected): the parameters cell's defaults and what papermill injected, from ``In``.

    papermill inserts its cell (first line ``# Parameters``) right after the ``parameters``
    cell, so the declared cell is the one executed just before it. Without papermill, the
    declared cell is the latest executed cell of literal assignments that sets ``preset``.
    ``history[-1]`` is the cell running the check and is skipped. None: no such cell ran.
    """
    earlier = list(history[:-1])
    for i in range(len(earlier) - 1, -1, -1):
        if earlier[i].lstrip().startswith(INJECTED_HEADER):
            injected = _literal_assignments(earlier[i]) or {}
            for j in range(i - 1, -1, -1):  # skip a re-run injected cell
                if earlier[j].lstrip().startswith(INJECTED_HEADER):
                    continue
                declared = _literal_assignments(earlier[j])
                if declared is None:
                    raise ValueError("the cell before papermill's injected parameters is not a cell of literal "
                                     "assignments; keep the notebook's 'parameters' cell to `name = literal` lines")
                return declared, injected
            return None
    for source in reversed(earlier):
        declared = _literal_assignments(source)
        if declared and "preset" in declared:
            return declared, {}
    return None


TEXT_VALUED = ("preset", "dataset", "executor", "output_dir", "store_root")  # and *_arch: never parsed as lists


def parse_text(name: str, text: Any, default: Any) -> Any:
    """A value papermill's ``-p`` passed as text, read as JSON or YAML when it looks like a list or dict.

    Text stays text where the parameter itself is text (its default is a string).
    """
    if not isinstance(text, str) or isinstance(default, str):
        return text
    if not text.strip().startswith(("[", "{")):
        if isinstance(default, (list, tuple)):
            raise ValueError(f"parameter {name}={text!r} must be a list; papermill's -p passes text, so write it "
                             f"as a list: -p {name} '[{json.dumps(text)}]' (or -y '{name}: [{text}]')")
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"parameter {name}={text!r} is neither JSON nor YAML ({first}); write a list as "
                         f"-p {name} '[\"a\", \"b\"]' (or -y '{name}: [a, b]')") from None


def _has_rule(name: str) -> bool:
    try:
        _rule_for(name)
    except ValueError:
        return False
    return True


def _check_namespace(namespace: MutableMapping[str, Any]) -> None:
    """No parameters cell in the history (nbval and scripts keep none): check the names that have a rule."""
    values = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in ("In", "Out") or not _has_rule(name) and name != "preset":
            continue
        if value is None or isinstance(value, (str, int, float, bool, list, tuple, dict)):
            text_valued = name in TEXT_VALUED or name.endswith("_arch")
            namespace[name] = values[name] = parse_text(name, value, "" if text_valued else None)
    check_parameters(values.pop("preset", None), **values)


def check(namespace: MutableMapping[str, Any], history: Sequence[str] | None = None) -> None:
    """Check a notebook's parameters where they live: ``parameters.check(globals())``.

    Fails on an injected name the notebook does not declare (naming the declared ones),
    replaces list/dict text from ``-p`` by its value in ``namespace``, then runs
    ``check_parameters`` on every declared name. ``history`` defaults to IPython's ``In``;
    where it holds no parameters cell (nbval runs cells without history, plain scripts have
    none) the names in ``namespace`` that have a rule are checked instead.
    """
    found = find_cells(namespace.get("In") or [] if history is None else history)
    if found is None:
        _check_namespace(namespace)
        return
    declared, injected = found
    unknown = [n for n in injected if n not in declared]
    if unknown:
        hints = [f"{n!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(n, declared, 1))
                 else repr(n) for n in unknown]
        raise ValueError(f"this notebook has no parameter {', '.join(hints)}; it declares {sorted(declared)}. "
                         "Fix the name given to papermill -p/-y")
    for name, default in declared.items():
        if name in injected and name in namespace:
            namespace[name] = parse_text(name, namespace[name], default)
    values = {name: namespace[name] for name in declared if name in namespace}
    check_parameters(values.pop("preset", None), **values)
