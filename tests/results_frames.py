"""Small synthetic results frames shared by the analysis and chart tests (one row per run)."""
import itertools
import math

import pandas as pd

from kdlib import analysis

def row(**kw):
    base = dict(kind="distill", preset="mini", dataset="fmnist-fine", teacher="resnet50", teacher_origin="finetuned",
                teacher_epochs=10, teacher_id="t0", pretrain_corpus="fmnist-general", student="resnet18",
                student_init="random", method="kd", variant="kd", temperature=1.0, optimizer="adamw", batch_size=128,
                epochs=30, seed=0, status="done", test_acc=70.0, teacher_acc=83.0, teacher_h_all=0.3,
                teacher_h_minus_max=0.8)
    base.update(kw)
    return base


def frame(rows):
    f = pd.DataFrame(rows)
    f["run_id"] = [f"r{i:04d}" for i in range(len(f))]
    return f


def training_frame(seeds=(0,)):
    """SGD: small T wins short, large T wins long, later with the larger batch; AdamW: flat in T."""
    rows = []
    for opt, bs, e, t, s in itertools.product(["adamw", "sgd"], [64, 256], [1, 2, 4, 8, 16], [1, 4, 40], seeds):
        lt, le = math.log2(t), math.log2(e)
        acc = 40 + 10 * le + (0.3 * lt if opt == "adamw" else lt * (le - (2 if bs == 64 else 3)))
        rows.append(row(optimizer=opt, batch_size=bs, epochs=e, temperature=float(t), seed=s, test_acc=acc + s))
    return frame(rows)


def teacher_frame(seeds=(0,), origins=("finetuned", "scratch")):
    rows = []
    teachers = [("finetuned", 3), ("finetuned", 5), ("finetuned", 10), ("finetuned", 20), ("scratch", 10)]
    for (origin, te), t, s in itertools.product(teachers, [1, 4, 40], seeds):
        if origin not in origins:
            continue
        acc = 60 - math.log2(t) if origin == "scratch" else 72 - te / 5 + math.log2(t) * (1 - te / 20)
        rows.append(row(teacher_origin=origin, teacher_epochs=te, teacher_id=f"{origin}{te}s{s}", temperature=float(t),
                        seed=s, test_acc=acc + s, teacher_acc=80 + te / 4 + s, teacher_h_all=0.5 - te / 50 + s / 100,
                        teacher_h_minus_max=0.6 + te / 60))
    return frame(rows)


def student_frame(seeds=(0,)):
    rows = []
    inits = ["finetuned", "random", "pretrained", "target"]  # stored order differs from the paper's
    for student, init, t, s in itertools.product(["resnet18", "mnv4"], inits, [1, 4, 40], seeds):
        acc = 60 + 3 * analysis.INIT_ORDER.index(init) + math.log2(t) + s
        rows.append(row(student=student, student_init=init, temperature=float(t), seed=s, test_acc=acc))
    refs = [dict(kind="supervised", preset="mini", dataset="fmnist-fine", arch=student, origin="finetuned",
                 init="finetuned", epochs=10, seed=s, status="done", test_acc=(67.0 if student == "resnet18" else 75.0) + s)
            for student, s in itertools.product(["resnet18", "mnv4"], seeds)]
    refs.append(dict(kind="supervised", preset="mini", dataset="fmnist-fine", arch="resnet18", origin="target",
                     init="target", epochs=10, seed=0, status="done", test_acc=50.0))
    return frame(rows + refs)


def granularity_frame(seeds=(0,), teachers=("resnet50",)):
    cases = [("fmnist-fine", "fmnist-general", lambda lt: 70 + 2 * min(lt, math.log2(10))),
             ("fmnist-coarse", "fmnist-general", lambda lt: 85 + 2 * min(lt, 1)),
             ("fmnist-fine", "fmnist-general-coarse", lambda lt: 68 - 0.8 * lt)]
    rows = []
    for (d, c, f), teacher, t, s in itertools.product(cases, teachers, [1, 2, 4, 10, 40], seeds):
        rows.append(row(dataset=d, pretrain_corpus=c, teacher=teacher, temperature=float(t), seed=s,
                        test_acc=f(math.log2(t)) + 0.5 * s, teacher_id=f"{d}{c}{teacher}{s}"))
    return frame(rows)
