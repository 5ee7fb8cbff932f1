"""The distillation losses say what their papers say.

Expected values are computed here with numpy from the papers' formulas, never by
calling kdlib; the rest checks properties the definitions imply (zero at a perfect
student, invariance to logit shifts and class order, finiteness at T = 40 and with
logits of magnitude 100) and the schedules and ablation targets of the study.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib import losses, methods

torch.set_num_threads(1)

METHODS = ["ctkd", "dist", "dkd", "eakd", "kd", "lskd", "mlkd", "rld"]

# Small logits to check by hand: 3 samples, 4 classes. Row 0: the teacher agrees with the
# label; row 1: it does not; row 2: the label is the teacher's lowest class.
S = np.array([[1.0, 0.5, -0.5, 0.2], [0.3, -1.0, 2.0, 0.1], [-0.2, 0.4, 0.0, 1.5]])
T_ = np.array([[2.0, 0.0, -1.0, 0.5], [1.0, 0.5, 0.8, -0.3], [0.2, 1.1, 0.4, -2.0]])
Y = np.array([0, 2, 3])


def tensors(s=S, t=T_, y=Y):
    return (torch.tensor(s, dtype=torch.float32, requires_grad=True), torch.tensor(t, dtype=torch.float32),
            torch.tensor(y, dtype=torch.int64))


# ----------------------------------------------------------------- numpy references

def softmax(z, T=1.0):
    z = np.asarray(z, dtype=np.float64) / T
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def kl(p, q):
    p, q = np.asarray(p), np.asarray(q)
    return np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0).sum(-1)


def ent(p):
    p = np.asarray(p)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(-1)


def np_kd(s, t, T):
    return T**2 * kl(softmax(t, T), softmax(s, T))


def np_binary(p, idx):
    top = p[np.arange(len(idx)), idx]
    return np.stack([top, 1 - top], 1)


def np_without(z, idx):
    keep = np.ones(z.shape, bool)
    keep[np.arange(len(idx)), idx] = False
    return z[keep].reshape(z.shape[0], -1)


def np_dkd(s, t, y, T, alpha, beta):
    tckd = kl(np_binary(softmax(t, T), y), np_binary(softmax(s, T), y))
    nckd = kl(softmax(np_without(t, y), T), softmax(np_without(s, y), T))
    return (T**2 * (alpha * tckd + beta * nckd)).mean()


def np_eakd(s, t, T, Te):
    ht, hs = ent(softmax(t, Te)), ent(softmax(s, Te))
    w = (ht + ht * hs / np.log(s.shape[1])) / 2
    return (w * np_kd(s, t, T)).mean()


def np_zscore(z):
    return (z - z.mean(1, keepdims=True)) / (z.std(1, ddof=1, keepdims=True) + 1e-7)


def np_mlkd_reference(s_weak, t_weak, s_strong, t_strong, temps):
    """KD_ours.forward_train's returned KD terms (loss_kd + loss_cc + loss_bc), CE left out.

    Each reduced term is multiplied by a boolean mask and averaged, i.e. scaled by the
    mask's mean; the strong view adds an unmasked instance term (whose T = 2 and 6 parts
    the reference computes on the weak view).
    """
    p1 = softmax(t_weak)
    conf, csum = p1.max(1), p1.sum(0)
    m = conf <= np.percentile(conf, 50)
    mc = csum <= np.percentile(csum, 50)
    b, c = s_weak.shape

    def inst(s, t, T):
        return np_kd(s, t, T).mean()

    def bc(s, t, T):
        ps, pt = softmax(s, T), softmax(t, T)
        return ((pt @ pt.T - ps @ ps.T) ** 2).sum() / b

    def cc(s, t, T):
        ps, pt = softmax(s, T), softmax(t, T)
        return ((pt.T @ pt - ps.T @ ps) ** 2).sum() / c

    total = 0.0
    for T in temps:
        total += (inst(s_weak, t_weak, T) * m).mean()
        total += inst(s_weak, t_weak, T) if T in (2.0, 6.0) else inst(s_strong, t_strong, T)
        total += (cc(s_weak, t_weak, T) * mc).mean() + (bc(s_weak, t_weak, T) * m).mean()
    return total


def np_mlkd(s, t, temps):
    return np_mlkd_reference(s, t, s, t, temps)


def np_rld(s, t, y, T, Ta, alpha, beta):
    scd = Ta**2 * kl(np_binary(softmax(t, Ta), t.argmax(1)), np_binary(softmax(s, Ta), y))
    mcd = []
    for i in range(len(y)):
        keep = t[i] < t[i, y[i]]
        mcd.append(T**2 * kl(softmax(t[i, keep], T), softmax(s[i, keep], T)) if keep.any() else 0.0)
    return (alpha * scd + beta * np.array(mcd)).mean()


def np_dist(s, t, T, beta, gamma):
    ps, pt = softmax(s, T), softmax(t, T)
    rows = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(ps, pt)])
    cols = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(ps.T, pt.T)])
    return T**2 * (beta * (1 - rows) + gamma * (1 - cols))


def value(name, s=S, t=T_, y=Y, epoch=None, **hp):
    loss = losses.build(name, **hp)
    if epoch is not None:
        loss.set_epoch(epoch, 100)
    return loss(*tensors(s, t, y)).item()


# ----------------------------------------------------------------- registry and errors

def test_every_method_of_the_study_is_registered():
    assert losses.names() == METHODS


def test_the_method_vocabulary_below_training_is_the_losses_and_their_constructor_arguments():
    assert methods.names() == METHODS
    for name in METHODS:
        init = type(losses.build(name)).__init__
        assert methods.HYPERPARAMETERS[name] == tuple(inspect.signature(init).parameters)[1:], name


def test_an_unknown_method_is_an_error_that_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown distillation loss 'dkdd'.*ctkd, dist, dkd, eakd, kd, lskd, mlkd, rld"):
        losses.build("dkdd")


def test_an_unknown_hyperparameter_is_an_error_that_lists_the_methods_hyperparameters():
    with pytest.raises(ValueError, match="'gamma'.*valid hyperparameters of 'dkd' are temperature, alpha, beta, warmup"):
        losses.build("dkd", gamma=1.0)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_temperature_that_is_not_a_positive_number_is_an_error(name, bad):
    with pytest.raises(ValueError, match="temperature=.*must be a finite number > 0"):
        losses.build(name, temperature=bad)


def test_every_temperature_of_a_multi_temperature_method_is_checked():
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        losses.build("mlkd", other_temperatures=(2.0, 0.0))
    with pytest.raises(ValueError, match="alpha_temperature"):
        losses.build("rld", alpha_temperature=-1)


@pytest.mark.parametrize("name", METHODS)
def test_hparams_rebuild_the_same_loss(name):
    loss = losses.build(name)
    again = losses.build(name, **loss.hparams)
    assert again.hparams == loss.hparams and loss.name == name
    assert value(name) == pytest.approx(again(*tensors()).item())


def test_defaults_are_the_papers_imagenet_weights_and_temperatures_with_cifar_length_schedules():
    assert losses.build("dkd").hparams == {"temperature": 1.0, "alpha": 1.0, "beta": 0.5, "warmup": 20}
    assert losses.build("rld").hparams == {"temperature": 1.0, "alpha": 1.0, "beta": 0.5,
                                          "alpha_temperature": 1.0, "warmup": 20}
    assert losses.build("eakd").hparams == {"temperature": 1.0, "entropy_temperature": 3.0}
    assert losses.build("dist").hparams == {"temperature": 1.0, "beta": 1.0, "gamma": 1.0}
    assert losses.build("ctkd").hparams == {"temperature": None, "t_start": 1.0, "t_end": 20.0, "cosine_epochs": 10,
                                           "temperature_lr": 0.05, "temperature_momentum": 0.9,
                                           "temperature_weight_decay": 5e-4}


# ----------------------------------------------------------------- values

def test_kd_by_hand():
    # teacher (1/2, 1/2), student (1/4, 3/4) at T = 2: T^2 * (1/2 ln 2 + 1/2 ln(2/3)) = 2 ln(4/3)
    s, t = np.array([[0.0, 2 * math.log(3)]]), np.zeros((1, 2))
    assert value("kd", s, t, np.array([0]), temperature=2.0) == pytest.approx(2 * math.log(4 / 3), rel=1e-6)


def test_kd_at_temperature_one_is_torchs_batchmean_kl_div():
    s, t, y = tensors()
    expected = F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True, reduction="batchmean")
    assert losses.build("kd", temperature=1)(s, t, y).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("T", [1.0, 4.0, 40.0])
def test_kd_is_t_squared_kl_mean_over_the_batch(T):
    assert value("kd", temperature=T) == pytest.approx(np_kd(S, T_, T).mean(), rel=1e-5)


@pytest.mark.parametrize("T,alpha,beta", [(1.0, 1.0, 0.5), (4.0, 1.0, 8.0)])
def test_dkd_is_alpha_tckd_plus_beta_nckd(T, alpha, beta):
    got = value("dkd", epoch=99, temperature=T, alpha=alpha, beta=beta)
    assert got == pytest.approx(np_dkd(S, T_, Y, T, alpha, beta), rel=1e-5)


def test_dkd_with_only_the_target_term_ignores_how_the_other_classes_are_ranked():
    s2 = S.copy()
    s2[0, 1:] = s2[0, 1:][::-1]  # reorder the student's non-target classes of a sample
    a = value("dkd", epoch=99, beta=0.0)
    assert value("dkd", s=s2, epoch=99, beta=0.0) == pytest.approx(a, rel=1e-6)


@pytest.mark.parametrize("T,Te", [(1.0, 2.0), (4.0, 3.0)])
def test_eakd_weights_each_samples_kd_by_entropies(T, Te):
    assert value("eakd", temperature=T, entropy_temperature=Te) == pytest.approx(np_eakd(S, T_, T, Te), rel=1e-5)


def test_ctkd_starts_at_the_references_temperature_and_computes_kd_there():
    T0 = 1 + 20 / (1 + math.exp(-1.0))  # theta = 1
    loss = losses.build("ctkd")
    assert loss.current_temperature() == pytest.approx(T0, rel=1e-6)
    assert loss(*tensors()).item() == pytest.approx(np_kd(S, T_, T0).mean(), rel=1e-5)
    assert losses.build("ctkd", temperature=4.0).current_temperature() == pytest.approx(4.0, rel=1e-6)


def test_ctkd_initial_temperature_must_be_inside_its_range():
    with pytest.raises(ValueError, match="strictly between t_start=1 and t_start \\+ t_end=21"):
        losses.build("ctkd", temperature=1.0)


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_lskd_is_kd_on_z_scored_logits(T):
    assert value("lskd", temperature=T) == pytest.approx(np_kd(np_zscore(S), np_zscore(T_), T).mean(), rel=1e-5)


def test_mlkd_sums_instance_batch_and_class_alignment_over_temperatures():
    assert value("mlkd") == pytest.approx(np_mlkd(S, T_, (4, 2, 3, 5, 6)), rel=1e-5)
    assert value("mlkd", temperature=1.0, other_temperatures=()) == pytest.approx(np_mlkd(S, T_, (1,)), rel=1e-5)


def test_mlkd_is_the_references_formula_with_both_views_the_same_batch():
    # 9 samples, 7 classes: the masks hold 5 of 9 samples and 4 of 7 classes, so scaling by
    # the mask's mean and selecting the masked samples give different values.
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(9, 7)) * 2, rng.normal(size=(9, 7)) * 3
    y = np.zeros(9, dtype=np.int64)
    expected = np_mlkd_reference(s, t, s, t, (4.0, 2.0, 3.0, 5.0, 6.0))
    assert value("mlkd", s=s, t=t, y=y) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("T,Ta,alpha,beta", [(1.0, 1.0, 1.0, 0.5), (4.0, 1.0, 1.0, 8.0), (2.0, 3.0, 0.5, 1.0)])
def test_rld_is_sample_confidence_plus_masked_class_correlation(T, Ta, alpha, beta):
    got = value("rld", epoch=99, temperature=T, alpha_temperature=Ta, alpha=alpha, beta=beta)
    assert got == pytest.approx(np_rld(S, T_, Y, T, Ta, alpha, beta), rel=1e-5)


@pytest.mark.parametrize("T,beta,gamma", [(1.0, 1.0, 1.0), (4.0, 2.0, 2.0)])
def test_dist_is_one_minus_pearson_across_classes_and_across_samples(T, beta, gamma):
    assert value("dist", temperature=T, beta=beta, gamma=gamma) == pytest.approx(np_dist(S, T_, T, beta, gamma), rel=1e-4)


# ----------------------------------------------------------------- properties

@pytest.mark.parametrize("name", ["kd", "lskd", "dkd", "eakd", "ctkd", "mlkd", "dist"])
def test_a_student_equal_to_its_teacher_has_zero_loss(name):
    assert value(name, s=T_, epoch=99) == pytest.approx(0.0, abs=1e-5)


def test_rld_class_correlation_part_is_zero_for_a_student_equal_to_its_teacher():
    assert value("rld", s=T_, epoch=99, alpha=0.0) == pytest.approx(0.0, abs=1e-6)
    # the confidence part compares the label (student) with the teacher's argmax: zero when they agree
    assert value("rld", s=T_, y=T_.argmax(1), epoch=99) == pytest.approx(0.0, abs=1e-6)
    assert value("rld", s=T_, epoch=99) > 0.01  # rows 1 and 2 disagree with their labels


def all_losses():
    out = [(n, {}) for n in METHODS]
    out += [("kd", {"targets": "ls-instance"}), ("kd", {"targets": "bottom-k", "k": 2})]
    return out


def seeded(name, hp):
    loss = losses.build(name, **hp)
    loss.set_epoch(30, 100)
    loss.generator = torch.Generator().manual_seed(0)
    return loss


@pytest.mark.parametrize("name,hp", all_losses())
def test_adding_a_constant_to_a_samples_logits_changes_nothing(name, hp):
    rng = np.random.default_rng(0)
    shift_s, shift_t = rng.normal(size=(3, 1)) * 10, rng.normal(size=(3, 1)) * 10
    a = seeded(name, hp)(*tensors()).item()
    b = seeded(name, hp)(*tensors(S + shift_s, T_ + shift_t)).item()
    assert b == pytest.approx(a, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name,hp", [x for x in all_losses() if x[1].get("targets") != "bottom-k"])
def test_renaming_the_classes_changes_nothing(name, hp):
    perm = np.array([2, 0, 3, 1])
    inverse = np.argsort(perm)
    a = seeded(name, hp)(*tensors()).item()
    b = seeded(name, hp)(*tensors(S[:, perm], T_[:, perm], inverse[Y])).item()
    assert b == pytest.approx(a, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name,hp", all_losses())
def test_the_teacher_is_a_constant(name, hp):
    s, t, y = tensors()
    t.requires_grad_()
    seeded(name, hp)(s, t, y).backward()
    assert t.grad is None and s.grad is not None


def test_lskd_ignores_the_scale_of_each_samples_logits():
    scale = np.array([[0.1], [3.0], [50.0]])
    assert value("lskd", s=S * scale, t=T_ * scale[::-1]) == pytest.approx(value("lskd"), rel=1e-5)


@pytest.mark.parametrize("name,hp", all_losses() + [("kd", {"targets": "ls-global"})])
@pytest.mark.parametrize("T", [1.0, 40.0])
def test_large_logits_and_temperatures_give_finite_losses_and_gradients(name, hp, T):
    g = torch.Generator().manual_seed(1)
    s = (100 * torch.randn(16, 10, generator=g)).requires_grad_()
    t = 100 * torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    if name != "ctkd":
        hp = {**hp, "temperature": T}
    loss = losses.build(name, **hp)
    loss.set_epoch(30, 100)
    loss.prepare(t)
    out = loss(s, t, y)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(s.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in loss.extra_parameters())
    assert all(torch.isfinite(p).all() for p in loss.parameters())  # CTKD's theta after its own step


# ----------------------------------------------------------------- schedules

@pytest.mark.parametrize("name", ["dkd", "rld"])
def test_warm_up_scales_the_loss_linearly_over_the_first_epochs(name):
    full = value(name, epoch=19, temperature=4.0)
    assert value(name, epoch=50, temperature=4.0) == pytest.approx(full, rel=1e-6)
    for epoch in (0, 4, 9):
        assert value(name, epoch=epoch, temperature=4.0) == pytest.approx(full * (epoch + 1) / 20, rel=1e-6)
    assert value(name, epoch=0, temperature=4.0, warmup=0) == pytest.approx(full, rel=1e-6)


def test_ctkd_reversal_strength_rises_from_zero_to_one_on_a_cosine():
    loss = losses.build("ctkd")
    strengths = []
    for epoch in range(15):
        loss.set_epoch(epoch, 15)
        strengths.append(loss.reversal_strength())
    expected = [0.5 * (1 - math.cos(math.pi * min(e + 1, 10) / 10)) for e in range(15)]
    assert strengths == pytest.approx(expected)
    assert strengths[0] < 0.03 and strengths[9:] == pytest.approx([1.0] * 6)


def test_ctkd_temperature_climbs_the_loss_the_student_descends():
    loss = losses.build("ctkd")
    loss.set_epoch(20, 40)
    s, t, y = tensors()
    (grad,) = torch.autograd.grad(loss(s, t, y), loss.theta)  # .grad stays empty: no step is taken
    theta = loss.theta.detach().clone()
    with torch.no_grad():  # the reversed gradient points uphill: a step along -grad raises the loss
        before = loss(s, t, y).item()
        loss.theta -= 0.1 * grad
        after = loss(s, t, y).item()
        loss.theta.copy_(theta)
    assert after > before


def np_kd_grad_wrt_theta(s, t, theta, t_start=1.0, t_end=20.0):
    """d/dtheta of mean T^2 KL at T = t_start + t_end sigmoid(theta), by a central difference in numpy."""
    def f(th):
        return np_kd(s, t, t_start + t_end / (1 + np.exp(-th))).mean()
    h = 1e-5
    return (f(theta + h) - f(theta - h)) / (2 * h)


@pytest.mark.parametrize("student_optimizer", ["adamw", "sgd"])
def test_ctkd_reversal_ramp_scales_the_temperatures_sgd_step_whatever_trains_the_student(student_optimizer):
    # The first step is theta += lr * strength * dL/dtheta (plain SGD on the reversed gradient, no
    # momentum history yet): the ramp's strength scales it, under AdamW too.
    rng = np.random.default_rng(0)
    s0, t = rng.normal(size=(32, 6)), 3 * rng.normal(size=(32, 6))
    steps = {}
    for cosine_epochs in (10, 1):
        student = torch.nn.Parameter(torch.tensor(s0, dtype=torch.float32))
        loss = losses.build("ctkd", cosine_epochs=cosine_epochs, temperature_lr=5.0, temperature_weight_decay=0.0)
        assert loss.extra_parameters() == []  # the student's optimizer never sees theta
        opt = (torch.optim.AdamW if student_optimizer == "adamw" else torch.optim.SGD)([student], lr=1e-2)
        loss.set_epoch(0, 30)
        strength = loss.reversal_strength()
        opt.zero_grad()
        loss(student, torch.tensor(t, dtype=torch.float32), torch.zeros(32, dtype=torch.int64)).backward()
        opt.step()
        expected = 5.0 * strength * np_kd_grad_wrt_theta(s0, t, 1.0)
        assert loss.theta.item() - 1.0 == pytest.approx(expected, rel=2e-3)
        steps[cosine_epochs] = loss.theta.item() - 1.0
    assert steps[10] == pytest.approx(steps[1] * 0.5 * (1 - math.cos(math.pi / 10)), rel=2e-3)


def ctkd_trajectory(cosine_epochs, epochs=6, steps_per_epoch=5):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    teacher = 5 * torch.randn(8, 5, generator=g)
    torch.manual_seed(0)
    student = torch.nn.Linear(8, 5)
    loss = losses.build("ctkd", cosine_epochs=cosine_epochs)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2)
    seen = []
    for epoch in range(epochs):
        loss.set_epoch(epoch, epochs)
        for _ in range(steps_per_epoch):
            opt.zero_grad()
            loss(student(x), x @ teacher, torch.zeros(64, dtype=torch.int64)).backward()
            opt.step()
        seen.append(loss.current_temperature())
    return np.array(seen)


def test_ctkd_ramp_changes_the_temperature_trajectory_under_adamw():
    slow, fast = ctkd_trajectory(cosine_epochs=6), ctkd_trajectory(cosine_epochs=1)
    start = 1 + 20 / (1 + math.exp(-1.0))
    # in the first epoch the slow ramp's strength is 0.07 of the fast one's (the fast run then
    # saturates near T = 21); an Adam-normalized step would move both about equally
    assert abs(slow[0] - start) < 0.5 * abs(fast[0] - start)
    assert np.abs(slow - fast).max() > 0.1


def test_ctkd_resumes_its_temperature_optimizer_exactly():
    def run(stop_after=None, state=None):
        g = torch.Generator().manual_seed(1)
        x, teacher = torch.randn(32, 4, generator=g), 4 * torch.randn(4, 3, generator=g)
        student = torch.randn(32, 3, generator=g)
        loss = losses.build("ctkd")
        if state is not None:
            loss.load_state_dict(state)
        for step in range(0 if state is None else 3, 6):
            loss.set_epoch(step, 6)
            loss(student, x @ teacher, torch.zeros(32, dtype=torch.int64)).backward()
            if step + 1 == stop_after:
                return {k: v.clone() for k, v in loss.state_dict().items()}
        return loss.current_temperature()
    assert run(state=run(stop_after=3)) == run()


def test_ctkd_temperature_moves_and_stays_between_1_and_21_during_training():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    teacher = 5 * torch.randn(8, 5, generator=g)
    student = torch.nn.Linear(8, 5)
    loss = losses.build("ctkd")
    opt = torch.optim.SGD(list(student.parameters()) + loss.extra_parameters(), lr=0.5)
    start = loss.current_temperature()
    seen = []
    for step in range(40):
        loss.set_epoch(step // 4, 10)
        opt.zero_grad()
        loss(student(x), x @ teacher, torch.zeros(64, dtype=torch.int64)).backward()
        opt.step()
        seen.append(loss.current_temperature())
    assert abs(seen[-1] - start) > 0.05
    assert all(1.0 <= T <= 21.0 for T in seen)


# ----------------------------------------------------------------- supervisory-signal ablations (Fig. 5)

def teacher_logits(n=200, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 4 * torch.randn(n, c, generator=g)


@pytest.mark.parametrize("T", [1.0, 4.0, 40.0])
def test_global_label_smoothing_matches_the_entropy_of_the_average_sorted_teacher(T):
    train = teacher_logits()
    loss = losses.build("kd", temperature=T, targets="ls-global")
    assert loss.needs_teacher_logits
    loss.prepare(train)
    target = loss.target_log_probs(train[:20]).exp().numpy()
    average = np.sort(softmax(train.double().numpy(), T), 1)[:, ::-1].mean(0)  # Fig. 4's profile, argmax first
    assert np.abs(ent(target) - ent(average)).max() < 1e-6
    rest = np.sort(target, 1)[:, :-1]
    assert np.allclose(rest, rest[0, 0], rtol=1e-12)  # one coefficient, all non-max classes equal
    assert (target.argmax(1) == train[:20].argmax(1).numpy()).all()


def np_ls_eps(h, c):
    """Label-smoothing coefficient of entropy h, by numpy bisection on the closed form."""
    def h_of(eps):
        top, rest = 1 - eps + eps / c, eps / c
        return -(top * np.log(top) + (c - 1) * rest * np.log(rest)) if eps > 0 else 0.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if h_of(mid) < h else (lo, mid)
    return (lo + hi) / 2


def test_global_label_smoothing_of_a_confident_teacher_is_small_at_t1_and_rises_with_t():
    g = torch.Generator().manual_seed(5)
    y = torch.arange(400) % 10                      # a balanced set
    train = torch.randn(400, 10, generator=g) + 8 * F.one_hot(y, 10)  # confident, right
    coeffs = []
    for T in (1.0, 2.0, 4.0, 10.0, 40.0):
        loss = losses.build("kd", temperature=T, targets="ls-global")
        loss.prepare(train)
        profile = np.sort(softmax(train.double().numpy(), T), 1)[:, ::-1].mean(0)
        assert loss.global_eps == pytest.approx(np_ls_eps(ent(profile), 10), abs=1e-6)
        coeffs.append(loss.global_eps)
    assert coeffs[0] < 0.05  # the unsorted class average would give ~0.996 here
    assert all(a < b for a, b in zip(coeffs, coeffs[1:]))
    unsorted = softmax(train.double().numpy(), 1.0).mean(0)
    assert np_ls_eps(ent(unsorted), 10) > 0.9  # what the defect computed


def test_global_label_smoothing_needs_prepare_first():
    loss = losses.build("kd", targets="ls-global")
    with pytest.raises(RuntimeError, match="prepare"):
        loss(*tensors())
    assert not losses.build("kd").needs_teacher_logits


@pytest.mark.parametrize("T", [1.0, 4.0, 40.0])
def test_per_instance_label_smoothing_matches_each_samples_entropy(T):
    t = teacher_logits(50)
    target = losses.build("kd", temperature=T, targets="ls-instance").target_log_probs(t).exp().numpy()
    assert np.abs(ent(target) - ent(softmax(t.double().numpy(), T))).max() < 1e-6
    top = target.max(1, keepdims=True)
    others = np.where(target == top, np.nan, target)
    assert np.allclose(np.nanmin(others, 1), np.nanmax(others, 1), rtol=1e-12)


def test_label_smoothing_entropy_spans_one_hot_to_uniform():
    assert losses.ls_entropy(torch.tensor(0.0), 10).item() == pytest.approx(0.0)
    assert losses.ls_entropy(torch.tensor(1.0), 10).item() == pytest.approx(math.log(10))
    h = torch.tensor([0.01, 1.0, 2.0, math.log(10) - 1e-9], dtype=torch.float64)
    assert (losses.ls_entropy(losses.ls_eps_for_entropy(h, 10), 10) - h).abs().max().item() < 1e-9


def test_bottom_k_keeps_the_top_k_in_place_and_shuffles_the_rest():
    t = teacher_logits(30, 12)
    loss = losses.build("kd", temperature=4.0, targets="bottom-k", k=3)
    p = softmax(t.numpy(), 4.0)
    a, b = (loss.target_log_probs(t).exp().double().numpy() for _ in range(2))
    top = np.argsort(-p, 1)[:, :3]
    rows = np.arange(30)[:, None]
    for q in (a, b):
        assert np.allclose(q[rows, top], p[rows, top], rtol=1e-5)
        rest = np.ones_like(p, bool)
        rest[rows, top] = False
        assert np.allclose(np.sort(q[rest].reshape(30, -1), 1), np.sort(p[rest].reshape(30, -1), 1), rtol=1e-5)
    assert not np.allclose(a, b)  # a fresh permutation per call
    assert (np.abs(a - p).max(1) > 0).mean() > 0.9  # and per sample


def test_bottom_k_follows_a_given_generator():
    t = teacher_logits(8, 12)
    loss = losses.build("kd", targets="bottom-k", k=1)
    loss.generator = torch.Generator().manual_seed(3)
    a = loss.target_log_probs(t)
    loss.generator = torch.Generator().manual_seed(3)
    assert torch.equal(a, loss.target_log_probs(t))


def test_bottom_k_needs_a_valid_k():
    with pytest.raises(ValueError, match="integer k >= 1"):
        losses.build("kd", targets="bottom-k")
    with pytest.raises(ValueError, match="k=4 must be below the number of classes C=4"):
        losses.build("kd", targets="bottom-k", k=4)(*tensors())
    with pytest.raises(ValueError, match="only applies to targets='bottom-k'"):
        losses.build("kd", k=2)
    with pytest.raises(ValueError, match="teacher, ls-global, ls-instance, bottom-k"):
        losses.build("kd", targets="uniform")
