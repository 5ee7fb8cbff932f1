"""Run specifications: what to train, as frozen dataclasses with a stable id.

Every result in the store is keyed by ``run_id(spec)``, a hash of the spec's fields, so a
restarted job finds its own folder and a finished run is never repeated. Models are
artifacts too: a teacher is a ``Supervised`` spec, and a run that starts from another
run's weights holds that spec in its ``init`` field, so "ResNet50 finetuned 20 epochs on
Pets" is trained once and shared by every study that asks for it.

Notebooks speak in the paper's names (``resnet50``, ``pets``); a *preset* says what those
names mean and which defaults apply (``paper``: the study's real settings; ``mini``: the
same study on Fashion-MNIST on a laptop CPU).
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from kdlib import checks, methods, records
from kdlib.presets import PRESETS, VIT_ARCHS, Preset, preset, temperature_grid, world  # noqa: F401 - specs' vocabulary

OPTIMIZERS = ("adamw", "sgd")
EXECUTORS = ("local", "submitit-local", "slurm")  # where runs.ensure trains (named here: checks need no runs import)
INITS = ("random", "pretrained", "target", "finetuned")


Init = Union["Supervised", str]


def _check_init(init: Any, what: str) -> None:
    if isinstance(init, Supervised):
        return
    if isinstance(init, str) and (init == "random" or init == "hub" or init.startswith(("hub:", "file:"))):
        return
    raise ValueError(f"{what}={init!r} is not an initialization; use 'random', 'hub' (timm's default "
                     "ImageNet tag), 'hub:<timm tag>', 'file:<path to weights>', or a Supervised spec")


def _check_common(spec: Any) -> None:
    """Every field a run needs, checked when the spec is built: nothing fails later for bad input."""
    preset(spec.preset)
    if spec.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={spec.optimizer!r}; choose one of {OPTIMIZERS}")
    distill = isinstance(spec, Distill)
    checks.integer("epochs", spec.epochs, 1 if distill else 0, "pass epochs=1 or more" + (
        " (a distillation with 0 epochs would finish without training or an accuracy)" if distill
        else " (0 only evaluates the starting weights)"))
    checks.integer("batch_size", spec.batch_size, 1, "pass e.g. batch_size=128")
    checks.integer("seed", spec.seed, 0, "pass e.g. seed=0")
    checks.number("lr", spec.lr, 0, "pass e.g. lr=1e-3", above=True)
    checks.number("weight_decay", spec.weight_decay, 0, "pass e.g. weight_decay=0.05 (0 for none)")
    checks.number("clip", spec.clip, 0, "pass e.g. clip=1.0 (0 turns per-layer clipping off)")
    from kdlib import data, models
    from kdlib.data.split import check_fraction
    object.__setattr__(spec, "val_fraction", check_fraction(spec.val_fraction))
    models.check_arch(getattr(spec, "arch", None) or spec.student, spec.preset)
    data.check_name(spec.dataset, spec.preset)
    size = data.train_size(spec.dataset, spec.preset)
    if size is not None and spec.val_fraction:  # what is left to train on once the validation part is held out
        size -= round(size * spec.val_fraction)
    checks.batch_size(spec.batch_size, mixup=getattr(spec, "mixup", True), dataset=spec.dataset,
                      what="a distillation" if distill else "mixup=True", size=size)


# Fields added after stores existed: left out of ``to_dict`` (so of ``run_id``) at their default,
# so every earlier spec keeps its id and folder (``records.to_dict`` reads each class's ``late_fields``).
LATE_FIELDS = {"val_fraction": 0.0}


@dataclass(frozen=True)
class Supervised:
    """A model trained on labels: general pretraining, a teacher, or a label-only student.

    ``init`` is where its weights start: ``"random"``, the timm hub weights (``"hub"`` or
    ``"hub:<tag>"``), a local weight file (``"file:<path>"``), or another Supervised run.
    Label-smoothed cross-entropy with MixUp/CutMix, as the paper finetunes its teachers.
    """

    arch: str
    dataset: str
    epochs: int
    init: Init = "random"
    optimizer: str = "adamw"
    lr: float = 5e-4
    weight_decay: float = 0.05
    batch_size: int = 128
    label_smoothing: float = 0.1
    mixup: bool = True               # per-batch MixUp/CutMix (the paper's finetuning recipe)
    clip: float = 1.0
    seed: int = 0
    preset: str = "mini"
    val_fraction: float = 0.0        # > 0: hold this stratified share of the train split out (validation)
    late_fields: ClassVar[dict[str, Any]] = LATE_FIELDS

    def __post_init__(self) -> None:
        _check_init(self.init, "init")
        if not isinstance(self.mixup, bool):
            checks.fail("mixup", self.mixup, "must be True or False", "pass mixup=True (the paper's recipe) or False")
        _check_common(self)
        checks.number("label_smoothing", self.label_smoothing, 0, "pass e.g. label_smoothing=0.1 (0 for none)", high=1)

    @property
    def origin(self) -> str:
        """How the weights came to be, in the paper's words (Sect. 4.3 / 4.4)."""
        return origin(self)


@dataclass(frozen=True)
class Distill:
    """One student distilled from one teacher by output matching only (no label loss).

    Runs that share teacher, dataset, seed and batch size see the same batches, so the
    executor trains them in one pass (``share_key``, ``train.distill_pass``).
    """

    teacher: Supervised
    student: str
    dataset: str
    temperature: float | None  # None: the method's own default (its paper's setting)
    epochs: int
    student_init: Init = "random"
    method: str = "kd"
    method_args: tuple[tuple[str, Any], ...] = ()
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 128
    clip: float = 1.0
    seed: int = 0
    preset: str = "mini"
    val_fraction: float = 0.0        # > 0: train on the rest of the train split, record val_acc too
    late_fields: ClassVar[dict[str, Any]] = LATE_FIELDS

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, Supervised):
            raise ValueError(f"teacher must be a Supervised spec (kdlib.specs.teacher(...)), got {self.teacher!r}")
        if self.temperature is not None:
            t = checks.check_temperature(self.temperature,
                                         hint=" (the study uses 1 to 40), or None for the method's own default")
            object.__setattr__(self, "temperature", t)
        if isinstance(self.method_args, dict):
            object.__setattr__(self, "method_args", tuple(sorted(self.method_args.items())))
        object.__setattr__(self, "method_args", tuple(tuple(kv) for kv in self.method_args))
        _check_init(self.student_init, "student_init")
        _check_common(self)
        if self.teacher.dataset != self.dataset:
            raise ValueError(f"teacher was trained on {self.teacher.dataset!r} but the student distils on "
                             f"{self.dataset!r}; build the teacher for the same dataset")
        methods.check_method(self.method, dict(self.method_args))

    @property
    def share_key(self) -> str:
        """Id of this run's data stream (teacher, dataset, seed, batch size, preset): the pass it joins."""
        return run_id(dataclasses.replace(self, temperature=1.0, method="kd", method_args=(), student=self.teacher.arch,
                                          student_init="random", epochs=1, optimizer="adamw", lr=1.0, weight_decay=0.0,
                                          clip=0.0))


Spec = Union[Supervised, Distill]


def to_dict(spec: Any) -> Any:
    """Plain JSON-able form of a spec, nested specs included, with their kind (late fields only when set)."""
    return records.to_dict(spec)


def from_dict(d: Any) -> Any:
    """Inverse of ``to_dict``."""
    if isinstance(d, dict) and d.get("kind") in ("Supervised", "Distill"):
        cls = Supervised if d["kind"] == "Supervised" else Distill
        kwargs = {k: from_dict(v) for k, v in d.items() if k != "kind"}
        if cls is Distill:
            kwargs["method_args"] = tuple(tuple(kv) for kv in kwargs["method_args"])
        return cls(**kwargs)
    return d


def run_id(spec: Spec) -> str:
    """Stable 16-hex id: the same spec gives the same folder on every machine."""
    return records.record_id(spec)


def origin(init: Init) -> str:
    """Name an initialization the way the paper does: random, pretrained, target or finetuned."""
    if isinstance(init, str):
        return "random" if init == "random" else "pretrained"
    p = preset(init.preset)
    if init.init == "random":
        return "pretrained" if init.dataset == p.pretrain_corpus else "target"
    if init.dataset == p.pretrain_corpus:
        return "pretrained"
    return "finetuned"


# ----------------------------------------------------------------------------- builders

def pretrained(arch: str, *, preset_name: str = "mini", corpus: str | None = None, tag: str | None = None,
               seed: int | None = None, epochs: int | None = None) -> Init:
    """General pretraining: timm's ImageNet weights (paper) or kdlib's own run on the mini corpus.

    ``tag`` picks other timm weights (IN-21K, CLIP, ...); ``corpus`` the mini corpus
    (``fmnist-general`` with fine labels, ``fmnist-general-coarse`` without them).
    ``seed`` None is the preset's ``pretrain_seed``: like the hub weights, one pretraining
    serves every run seed (pass a seed for a pretraining of its own).
    """
    p = preset(preset_name)
    seed = p.pretrain_seed if seed is None else seed
    if p.pretrain_corpus is None:
        if tag and tag.startswith("file:"):
            return tag
        return f"hub:{tag}" if tag else "hub"
    epochs = p.pretrain_epochs if epochs is None else epochs
    # A short plain recipe (no MixUp/CutMix) stands in for ImageNet pretraining: it reaches
    # a good general model in the few epochs a laptop can afford.
    return Supervised(arch=arch, dataset=corpus or p.pretrain_corpus, epochs=epochs, init="random",
                      lr=p.pretrain_lr, weight_decay=p.weight_decay, batch_size=p.batch_size,
                      label_smoothing=p.label_smoothing, mixup=False, seed=seed, preset=preset_name)


def trained(arch: str, dataset: str, *, init: str = "finetuned", preset_name: str = "mini", epochs: int | None = None,
            corpus: str | None = None, tag: str | None = None, seed: int = 0, pretrain_epochs: int | None = None,
            **overrides: Any) -> Init:
    """A model in one of the paper's four states (Sect. 4.4): random, pretrained, target, finetuned.

    ``target`` trains from random weights on the target labels; ``finetuned`` starts from
    the general pretraining, one run shared by every ``seed`` (``Preset.pretrain_seed``, as
    the paper's seeds share timm's ImageNet weights). ``epochs`` defaults to the preset's finetune
    duration.
    """
    if init not in INITS:
        raise ValueError(f"init={init!r}; choose one of {INITS}")
    p = preset(preset_name)
    if init == "random":
        return "random"
    if init == "pretrained":
        return pretrained(arch, preset_name=preset_name, corpus=corpus, tag=tag, epochs=pretrain_epochs)
    from kdlib import data
    data.check_name(dataset, preset_name)
    if epochs is None:
        family = data.base_dataset(dataset)  # a larger draw of a mini set trains as long as the set
        if family not in p.finetune_epochs and not dataset.startswith("imagefolder:"):
            raise ValueError(f"no default finetune epochs for dataset {dataset!r} in preset {preset_name!r}; "
                             f"pass epochs=..., known: {sorted(p.finetune_epochs)}")
        epochs = p.finetune_epochs.get(family, 20)
    start = "random" if init == "target" else pretrained(arch, preset_name=preset_name, corpus=corpus, tag=tag,
                                                         epochs=pretrain_epochs)
    lr = p.vit_lr if arch in VIT_ARCHS else p.cnn_lr
    kwargs = dict(arch=arch, dataset=dataset, epochs=epochs, init=start, lr=lr, weight_decay=p.weight_decay,
                  batch_size=p.batch_size, label_smoothing=p.label_smoothing, seed=seed, preset=preset_name,
                  val_fraction=p.val_fraction)
    kwargs.update(overrides)
    return Supervised(**kwargs)


def teacher(arch: str, dataset: str, *, origin: str = "finetuned", preset_name: str = "mini", **kwargs: Any) -> Supervised:
    """A teacher: ``finetuned`` from general pretraining (the paper's default) or ``scratch``, trained on the
    target set with the preset's teacher recipe (``teacher_label_smoothing``, ``teacher_mixup``)."""
    if origin not in ("finetuned", "scratch"):
        raise ValueError(f"teacher origin={origin!r}; choose 'finetuned' or 'scratch'")
    p = preset(preset_name)
    kwargs.setdefault("label_smoothing", p.teacher_label_smoothing)
    kwargs.setdefault("mixup", p.teacher_mixup)
    return trained(arch, dataset, init="finetuned" if origin == "finetuned" else "target", preset_name=preset_name,
                   **kwargs)


def distill(teacher: Supervised, student: str, temperature: float, *, student_init: str | Init = "random",
            epochs: int | None = None, pretrain_epochs: int | None = None, **kwargs: Any) -> Distill:
    """A distillation run with the preset's baseline settings (STUDY.md, "Shared baseline").

    ``student_init`` is one of the paper's four states (random, target, pretrained,
    finetuned) or an explicit spec; ``optimizer="sgd"`` picks the preset's SGD settings.
    """
    p = preset(teacher.preset)
    dataset = teacher.dataset
    if isinstance(student_init, str) and student_init in INITS:
        student_init = trained(student, dataset, init=student_init, preset_name=p.name, seed=teacher.seed,
                               pretrain_epochs=pretrain_epochs)
    if epochs is None:
        from kdlib import data
        epochs = p.distill_epochs.get(data.base_dataset(dataset), 30)
    base = dict(teacher=teacher, student=student, dataset=dataset, temperature=temperature, epochs=epochs,
                student_init=student_init, lr=p.distill_lr, weight_decay=p.weight_decay, batch_size=p.batch_size,
                preset=p.name, seed=teacher.seed, val_fraction=p.val_fraction)
    if kwargs.get("optimizer") == "sgd":
        base.update(lr=p.sgd_lr, weight_decay=p.sgd_weight_decay)
    base.update(kwargs)
    return Distill(**base)


def grid(base: Spec | list[Spec], **axes: Any) -> list[Spec]:
    """Every combination of ``axes`` applied to ``base``: ``grid(run, temperature=[1, 4, 40])``.

    Axis names are spec fields; values are lists. Duplicates are dropped, order is kept.
    """
    bases = base if isinstance(base, list) else [base]
    if not bases:
        raise ValueError("grid() got no base spec; build one with kdlib.specs.distill(...)")
    names = {f.name for f in dataclasses.fields(bases[0])}
    for axis, values in axes.items():
        if axis not in names:
            raise ValueError(f"unknown grid axis {axis!r}; axes are spec fields: {sorted(names)}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or len(list(values)) == 0:
            raise ValueError(f"grid axis {axis}={values!r} must be a non-empty list of values")
    out: dict[str, Spec] = {}
    for b in bases:
        for combo in itertools.product(*[list(v) for v in axes.values()]):
            spec = dataclasses.replace(b, **dict(zip(axes, combo)))
            out.setdefault(run_id(spec), spec)
    return list(out.values())
