"""The study notebooks' grids: durations and one grid builder per notebook."""
import pytest

from kdlib import studies


def test_scaled_epochs_rounds_halves_up_and_drops_duplicates():
    assert studies.scaled_epochs(16, [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]) == [1, 2, 4, 8, 16]
    assert studies.scaled_epochs(30, [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]) == [2, 4, 8, 15, 30]
    assert studies.scaled_epochs(10, [0.25, 0.5, 1, 2]) == [3, 5, 10, 20]
    assert studies.scaled_epochs(2, [0.1, 0.2, 1]) == [1, 2]
    with pytest.raises(ValueError, match="integer >= 1"):
        studies.scaled_epochs(0, [1])
    with pytest.raises(ValueError, match="numbers > 0"):
        studies.scaled_epochs(10, [0])


