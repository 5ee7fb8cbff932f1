"""kdlib.checks: one wording for bad numbers, temperatures and logits."""
import numpy as np
import pytest
import torch

from kdlib import checks


def test_booleans_are_never_integers_or_numbers():
    assert checks.is_int(3) and not checks.is_int(True) and not checks.is_int(3.0)
    assert checks.is_number(2.5) and not checks.is_number(False) and not checks.is_number(float("nan"))
    assert not checks.is_int(np.int64(3)) and checks.is_int(np.int64(3), numpy=True)
    assert not checks.is_int(np.bool_(True), numpy=True)


def test_numpy_floats_are_numbers_only_when_asked():
    assert checks.is_number(np.float64(0.5))  # a subclass of float
    assert not checks.is_number(np.float32(0.5)) and checks.is_number(np.float32(0.5), numpy=True)


def test_check_int_says_what_was_given_and_the_bound():
    assert checks.check_int("batch_size", 4) == 4
    with pytest.raises(ValueError, match=r"^batch_size=0 must be a positive integer$"):
        checks.check_int("batch_size", 0)
    with pytest.raises(ValueError, match=r"^n=-1 must be an integer >= 0 \(hint\)$"):
        checks.check_int("n", -1, minimum=0, hint=" (hint)")


def test_check_number_bounds_are_inclusive_unless_strict():
    assert checks.check_number("lr", 0) == 0.0
    with pytest.raises(ValueError, match=r"^lr=-0.1 must be a finite number >= 0$"):
        checks.check_number("lr", -0.1)
    with pytest.raises(ValueError, match=r"must be a finite number > 0"):
        checks.check_number("x", 0, strict=True)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "4", None])
def test_a_temperature_is_a_finite_number_above_zero(bad):
    with pytest.raises(ValueError, match=r"^temperature=.* must be a finite number > 0$"):
        checks.check_temperature(bad)


def test_a_good_temperature_comes_back_as_a_float():
    t = checks.check_temperature(4)
    assert t == 4.0 and type(t) is float
    assert checks.check_temperature(np.int64(2), numpy=True) == 2.0


def test_logits_need_two_dimensions_samples_and_classes():
    z = torch.zeros(3, 4)
    assert checks.check_logits(z) is z
    for shape in [(4,), (0, 4), (3, 1)]:
        with pytest.raises(ValueError, match=r"expected logits of shape \[N > 0, C >= 2\]"):
            checks.check_logits(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"^teacher: expected logits"):
        checks.check_logits(torch.zeros(3), what="teacher")


def test_finite_logits_are_floating_point_without_nan():
    with pytest.raises(ValueError, match="floating point"):
        checks.check_logits(torch.zeros(3, 4, dtype=torch.long), finite=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        checks.check_logits(torch.tensor([[0.0, float("nan")]]), finite=True)
    checks.check_logits(torch.tensor([[0.0, float("nan")]]))  # shape only, unless asked
