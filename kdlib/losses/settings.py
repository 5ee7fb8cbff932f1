"""Each method's own hyperparameters, per dataset family, from its reference repository's configs.

``method_settings("dkd", "cifar", epochs=30)`` gives the ``method_args`` of a run:
the CIFAR-100 configs for small images (32 px, the mini world), the ImageNet configs
for 224-px sets. Schedules written in epochs there (DKD's and RLD's warm-up, CTKD's
curriculum) are kept as the same *fraction* of the run (20 of 240 epochs is 1/12), so a
30-epoch run warms up for 2.5 epochs, not two thirds of it. docs/methods.md is this
table with the file each value comes from (a test checks they agree).

Loss weights relative to a cross-entropy the study drops are only a scale, so they are
left out, except where a method's own terms are weighted against each other.
"""
from __future__ import annotations

from kdlib import checks

FAMILIES = ("cifar", "imagenet")
SMALL_IMAGE_MAX = 64  # px: up to this, a dataset counts as CIFAR-like

# method -> family -> (settings, {name: epochs of the reference run} for schedules, source)
# A schedule entry (name, length, run) means `name` = length / run of the run's epochs.
_TABLE: dict[str, dict[str, tuple[dict, tuple, str]]] = {
    "dkd": {
        "cifar": ({"temperature": 4.0, "alpha": 1.0, "beta": 8.0}, ("warmup", 20, 240),
                  "megvii-research/mdistiller configs/cifar100/dkd/res32x4_res8x4.yaml (DKD block: "
                  "mdistiller/engine/cfg.py defaults)"),
        "imagenet": ({"temperature": 1.0, "alpha": 1.0, "beta": 0.5}, ("warmup", 1, 100),
                     "megvii-research/mdistiller configs/imagenet/r34_r18/dkd.yaml"),
    },
    "rld": {
        "cifar": ({"temperature": 4.0, "alpha": 1.0, "beta": 8.0, "alpha_temperature": 1.0}, ("warmup", 20, 240),
                  "zju-SWJ/RLD configs/cifar100/rld/resnet32x4_resnet8x4.yaml (RLD block: "
                  "mdistiller/engine/cfg.py defaults)"),
        "imagenet": ({"temperature": 1.0, "alpha": 1.0, "beta": 0.5, "alpha_temperature": 1.0}, ("warmup", 1, 100),
                     "zju-SWJ/RLD configs/imagenet/r34_r18/rld.yaml (alpha, alpha_temperature: cfg.py defaults)"),
    },
    "eakd": {
        "cifar": ({"temperature": 4.0, "entropy_temperature": 3.0}, (),
                  "cpsu00/EA-KD configs/cifar100/EA/kd.yaml (KD.TEMPERATURE, DISTILLER.t: "
                  "mdistiller/engine/cfg.py defaults)"),
        "imagenet": ({"temperature": 1.0, "entropy_temperature": 2.0}, (),
                     "cpsu00/EA-KD configs/imagenet/r34_r18/EA/kd.yaml"),
    },
    "ctkd": {
        "cifar": ({"t_start": 1.0, "t_end": 20.0, "temperature_lr": 0.05, "temperature_momentum": 0.9,
                   "temperature_weight_decay": 5e-4}, ("cosine_epochs", 10, 240),
                  "zhengli97/CTKD scripts/run_cifar_distill.sh (decay_loops 10, lr 0.05; epochs 240, momentum, "
                  "weight decay: train_student.py defaults)"),
        "imagenet": ({"t_start": 1.0, "t_end": 20.0, "temperature_lr": 0.1, "temperature_momentum": 0.9,
                      "temperature_weight_decay": 1e-4}, ("cosine_epochs", 5, 120),
                     "zhengli97/CTKD scripts/run_imagenet_distill.sh (decay_loops 5, epochs 120, lr 0.1, "
                     "weight decay 1e-4)"),
    },
    "lskd": {
        "cifar": ({"temperature": 2.0}, (),
                  "sunshangquan/logit-standardization-KD README.md (configs/cifar100/kd/resnet32x4_resnet8x4.yaml "
                  "--logit-stand --base-temp 2 --kd-weight 9)"),
        "imagenet": ({"temperature": 2.0}, (),
                     "sunshangquan/logit-standardization-KD README.md (configs/imagenet/r34_r18/kd.yaml "
                     "--logit-stand --base-temp 2 --kd-weight 9)"),
    },
    "mlkd": {
        "cifar": ({"temperature": 4.0, "other_temperatures": [2.0, 3.0, 5.0, 6.0]}, (),
                  "Jin-Ying/Multi-Level-Logit-Distillation configs/cifar100/ours/res32x4_res8x4.yaml (KD.TEMPERATURE: "
                  "mdistiller/engine/cfg.py default; 2, 3, 5, 6 fixed in mdistiller/distillers/KD_ours.py)"),
        "imagenet": ({"temperature": 1.0, "other_temperatures": [2.0, 3.0, 5.0, 6.0]}, (),
                     "Jin-Ying/Multi-Level-Logit-Distillation configs/imagenet/r34_r18/kd_ours.yaml"),
    },
    "dist": {
        "cifar": ({"temperature": 4.0, "beta": 2.0, "gamma": 2.0}, (),
                  "hunto/image_classification_sota configs/strategies/distill/dist_cifar.yaml (kd: dist_t4, "
                  "kd_loss_weight 2 on beta = gamma = 1: lib/models/losses/kd_loss.py)"),
        "imagenet": ({"temperature": 1.0, "beta": 2.0, "gamma": 2.0}, (),
                     "hunto/image_classification_sota configs/strategies/distill/resnet_dist.yaml (kd: dist, "
                     "kd_loss_weight 2 on beta = gamma = 1: lib/models/losses/kd_loss.py)"),
    },
}


def method_names() -> list[str]:
    """Methods that have per-family settings (vanilla KD has none: the study sweeps its T)."""
    return sorted(_TABLE)


def _check(method: str, family: str) -> None:
    if method not in _TABLE:
        raise ValueError(f"no per-family settings for method {method!r}; methods with settings: "
                         f"{', '.join(method_names())} (vanilla 'kd' takes the swept temperature)")
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; choose one of {', '.join(FAMILIES)} "
                         "(losses.dataset_family(dataset, preset) picks it from the image size)")


def method_settings(method: str, family: str, epochs: int) -> dict:
    """The ``method_args`` of ``method`` for a run of ``epochs`` epochs on a ``family`` dataset."""
    _check(method, family)
    if not checks.is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be the run's length, an integer >= 1 (schedules scale with it)")
    values, schedule, _ = _TABLE[method][family]
    out = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
    if schedule:
        name, length, run = schedule
        out[name] = length / run * epochs
    return out


def method_source(method: str, family: str) -> str:
    """The reference config file (repository and path) the settings come from."""
    _check(method, family)
    return _TABLE[method][family][2]


def dataset_family(dataset: str, preset: str = "mini") -> str:
    """``"cifar"`` for small images (<= 64 px: the mini world, CIFAR-sized sets), else ``"imagenet"``."""
    from kdlib import data  # things layer, below losses; imported late to keep import light

    return "cifar" if data.dataset_info(dataset, preset).image_size <= SMALL_IMAGE_MAX else "imagenet"


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(method, family, setting = value, source) rows of docs/methods.md, schedules as fractions."""
    rows = []
    for method in method_names():
        for family in FAMILIES:
            values, schedule, source = _TABLE[method][family]
            parts = [f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in values.items()]
            if schedule:
                name, length, run = schedule
                parts.append(f"{name} = {length}/{run} of the run")
            rows.append((method, family, "; ".join(parts), source))
    return rows
