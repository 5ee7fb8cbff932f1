"""kdlib.jobs: a job's body, and the teacher logits every later reader shares."""
import dataclasses
import os

import pytest
import torch

from kdlib import data, jobs, specs, store, train

TEACHER = specs.teacher("resnet50", "fmnist-fine", origin="scratch", epochs=1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    jobs.materialize(TEACHER, root, progress=False)
    return root


@pytest.mark.training
def test_teacher_logits_equal_the_trained_teachers_predictions_and_are_cached(root):
    logits, labels = jobs.teacher_logits(TEACHER, root=root, progress=False)
    plain = data.build_dataset("fmnist-fine", "train", train_transform=False)
    expected, expected_labels = train.predict(jobs.load_model(TEACHER, root, progress=False), plain)
    assert torch.equal(logits, expected) and torch.equal(labels, expected_labels)
    assert logits.shape == (len(plain), 10)
    file = store.RunDir(TEACHER, root).path / "logits-train-seed0.pt"
    stamp = file.stat().st_mtime_ns
    again, again_labels = jobs.teacher_logits(TEACHER, root=root, progress=False)
    assert file.stat().st_mtime_ns == stamp  # read back, not computed again
    assert torch.equal(again, logits) and torch.equal(again_labels, labels)


@pytest.mark.training
def test_the_test_split_and_another_world_have_their_own_cache(root):
    test_logits, test_labels = jobs.teacher_logits(TEACHER, "test", root=root, progress=False)
    assert len(test_labels) == len(data.build_dataset("fmnist-fine", "test"))
    other, _ = jobs.teacher_logits(TEACHER, root=root, seed=1, progress=False)
    path = store.RunDir(TEACHER, root).path
    assert (path / "logits-test-seed0.pt").is_file() and (path / "logits-train-seed1.pt").is_file()
    assert not torch.equal(other, jobs.teacher_logits(TEACHER, root=root, progress=False)[0])


@pytest.mark.training
def test_a_later_seeds_teacher_is_read_on_the_images_it_trained_on():
    # Run seeds change initialization and batch order; every seed trains on the preset's one world
    # (data_seed). Reading a seed-1 teacher on world 1 would score it on images it never saw.
    from kdlib import paths
    from kdlib.advisor import advice  # the advisor reads a teacher spec from the default store
    teacher = dataclasses.replace(TEACHER, seed=1)
    root = paths.store_dir()
    jobs.materialize(teacher, root, progress=False)
    trained_on = train._dataset(teacher, "train", train_transform=False)
    expected, expected_labels = train.predict(jobs.load_model(teacher, root, progress=False), trained_on)
    logits, labels = jobs.teacher_logits(teacher, root=root, progress=False)
    assert torch.equal(logits, expected) and torch.equal(labels, expected_labels)
    assert (store.RunDir(teacher, root).path / "logits-train-seed0.pt").is_file()
    (advised, advised_labels), _ = advice._spec_teacher(teacher, None, None, False)
    assert torch.equal(advised, expected) and torch.equal(advised_labels, expected_labels)
    assert not torch.equal(trained_on.indices, data.build_dataset("fmnist-fine", "train", seed=1).indices)


@pytest.mark.training
def test_a_damaged_logits_cache_is_computed_again(root):
    good, _ = jobs.teacher_logits(TEACHER, root=root, progress=False)
    file = store.RunDir(TEACHER, root).path / "logits-train-seed0.pt"
    file.write_bytes(b"not a torch file")
    again, _ = jobs.teacher_logits(TEACHER, root=root, progress=False)
    assert torch.equal(again, good)
    assert torch.load(file, weights_only=True)["logits"].shape == good.shape
    assert not [p for p in os.listdir(file.parent) if p.endswith(".tmp")]


def test_bad_teacher_logits_input_is_a_value_error_before_anything_trains(tmp_path):
    with pytest.raises(ValueError, match="must be a Supervised spec"):
        jobs.teacher_logits("resnet50", root=tmp_path)
    with pytest.raises(ValueError, match=r"split='val'; choose one of \['train', 'test'\]"):
        jobs.teacher_logits(TEACHER, "val", root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_teacher_logits_without_training_refuse_a_teacher_that_is_not_in_the_store(tmp_path):
    with pytest.raises(ValueError, match="runs.ensure"):
        jobs.teacher_logits(specs.teacher("resnet50", "fmnist-fine"), root=tmp_path, train_missing=False)
    assert not (tmp_path / specs.run_id(specs.teacher("resnet50", "fmnist-fine")) / "result.json").exists()


@pytest.mark.training
def test_the_advisor_reads_a_teacher_specs_cached_logits_the_same_as_a_fresh_pass(tmp_path, monkeypatch):
    import kdlib
    from kdlib import paths

    monkeypatch.setenv("KDLIB_OUTPUTS", str(tmp_path))
    advice = kdlib.advise(TEACHER, epochs=30)  # trains the teacher, caches its logits
    assert (paths.store_dir() / specs.run_id(TEACHER) / f"logits-train-seed{TEACHER.seed}.pt").is_file()
    model = jobs.load_model(TEACHER, progress=False)
    plain = data.build_dataset(TEACHER.dataset, "train", preset=TEACHER.preset, seed=TEACHER.seed,
                               train_transform=False)
    fresh = kdlib.advise(train.predict(model, plain, progress=False), spec=TEACHER, epochs=30)
    assert advice.temperature == fresh.temperature
    assert advice.diagnostics.h_all == pytest.approx(fresh.diagnostics.h_all, abs=1e-6)
