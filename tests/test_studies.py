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




def old_training_grid(preset, datasets, teachers, students, temperatures, seeds, optimizers, batch_sizes,
                      duration_fractions, distill_epochs=None):
    """Notebook 02's grid loop as it was written in the notebook before kdlib.studies."""
    import itertools

    from kdlib import specs

    grid = []
    for dataset, teacher_arch, student_arch, seed in itertools.product(datasets, teachers, students, seeds):
        teacher = specs.teacher(teacher_arch, dataset, preset_name=preset, seed=seed)
        longest = distill_epochs or specs.distill(teacher, student_arch, temperature=1).epochs
        for optimizer, batch_size, epochs in itertools.product(optimizers, batch_sizes,
                                                               studies.scaled_epochs(longest, duration_fractions)):
            base = specs.distill(teacher, student_arch, temperature=1, epochs=epochs, optimizer=optimizer,
                                 batch_size=batch_size)
            grid += specs.grid(base, temperature=temperatures)
    return grid


def test_the_training_configuration_grid_is_the_notebook_loop_it_replaced():
    from kdlib import specs

    kw = dict(preset="mini", datasets=["fmnist-fine"], teachers=["resnet50"], students=["resnet18"],
              temperatures=[1, 4, 40], seeds=[0, 1], optimizers=["adamw", "sgd"], batch_sizes=[32, 128],
              duration_fractions=[0.5, 1.0])
    grid = studies.from_notebook(studies.training_configuration, {**kw, "unrelated": 1, "executor": "local"})
    assert [specs.run_id(s) for s in grid.runs] == [specs.run_id(s) for s in old_training_grid(**kw)]
    assert len(grid.runs) == 2 * 2 * 2 * 2 * 3 and len(set(grid.teachers)) == 2
    # one pass per data stream: optimizers, durations and temperatures ride together; seeds x batch sizes split
    assert str(grid).startswith("48 runs in 4 shared passes from 2 teacher(s)")


def test_student_initialization_adds_one_finetune_only_reference_per_student_and_seed():
    grid = studies.student_initialization(preset="mini", datasets=["fmnist-fine"], teachers=["resnet50"],
                                          students=["resnet18"], temperatures=[1, 40], seeds=[0],
                                          student_inits=["random", "finetuned"])
    assert len(grid.runs) == 4 and len(grid.references) == 1
    assert grid.specs == [*grid.runs, *grid.references]  # teachers train on the way, and are not results rows
    assert grid.references[0].init != "random" and grid.runs[-1].student_init == grid.references[0]
