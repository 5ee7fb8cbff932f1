"""Intermediate evaluations on a fixed test subset; the last epoch on the full test set, unchanged."""
import copy

import pytest
import torch

from kdlib import data, members, models, numerics, specs, store, train


def test_the_subset_is_stratified_deterministic_and_exact_in_size():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    a = data.stratified_subset(labels, 10)
    assert torch.equal(a, data.stratified_subset(labels, 10))            # fixed
    assert torch.equal(a, torch.sort(a).values) and len(set(a.tolist())) == 10
    assert torch.bincount(labels[a]).tolist() == [5, 3, 2]                # each class its share
    assert torch.bincount(labels[data.stratified_subset(labels, 7)]).tolist() == [4, 2, 1]  # largest remainders
    assert torch.equal(data.stratified_subset(labels, 500), torch.arange(100))


def test_presets_name_their_curve_subset():
    assert specs.preset("mini").curve_test_images == 1000
    assert specs.preset("patient").curve_test_images == 1000
    assert specs.preset("paper").curve_test_images is None


def _plain_accuracy(model, dataset, positions=None, batch=100):
    """By hand: eager forward in eval mode, argmax, count (no kdlib loader or metric), in the memory
    format kdlib trains and evaluates in (``numerics.channels_last``), named explicitly."""
    fmt = torch.channels_last if numerics.channels_last(torch.device("cpu")) else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt).eval()
    idx = list(range(len(dataset))) if positions is None else positions.tolist()
    correct = 0
    with torch.no_grad():
        for a in range(0, len(idx), batch):
            items = [dataset[i] for i in idx[a:a + batch]]
            x = (torch.stack([im for im, _ in items]).float() / 255).contiguous(memory_format=fmt)
            y = torch.tensor([lab for _, lab in items])
            correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / len(idx)


def test_evaluate_matches_independent_counts_whatever_is_evaluated_with_it():
    test_set = data.build_dataset("fmnist-fine", "test")
    positions = data.stratified_subset(data.split.dataset_labels(test_set), 1000)
    torch.manual_seed(1)
    cpu = torch.device("cpu")
    a, b = (members.prepare_model(models.create("resnet18", 10), cpu) for _ in range(2))  # as a pass holds them
    full, curve, n = train.evaluate([a], [b], test_set, positions, device=cpu)
    only_curve = train.evaluate([], [b], test_set, positions, device=cpu)
    assert n == 1000 and only_curve == ([], curve, 1000)  # a curve point does not depend on who ends then
    assert full[0] == pytest.approx(_plain_accuracy(a, test_set), abs=1e-9)
    assert curve[0] == pytest.approx(_plain_accuracy(b, test_set, positions), abs=1e-9)
    logits, y = train.predict(a, test_set, device=cpu)          # the full-set figure as before, bit for bit
    assert full[0] == 100.0 * (logits.argmax(1) == y).double().mean().item()


def test_evaluate_on_member_threads_matches_independent_counts():
    """A pass evaluates its members' forwards at once on its member threads: the same accuracies as counted
    by hand, and no autograd graph kept (grad mode is per thread: a worker that forgets it keeps one)."""
    from concurrent.futures import ThreadPoolExecutor

    test_set = data.build_dataset("fmnist-fine", "test")
    positions = data.stratified_subset(data.split.dataset_labels(test_set), 1000)
    torch.manual_seed(2)
    cpu = torch.device("cpu")
    a, b, c = (members.prepare_model(models.create("resnet18", 10), cpu) for _ in range(3))
    graphs = []
    hook = a.register_forward_hook(lambda _m, _i, out: graphs.append(out.requires_grad))
    with ThreadPoolExecutor(2) as pool:
        full, curve, _ = train.evaluate([a, b], [c], test_set, positions, device=cpu, pool=pool)
    hook.remove()
    assert graphs and not any(graphs)
    assert full == [pytest.approx(_plain_accuracy(m, test_set), abs=1e-9) for m in (a, b)]
    assert curve == [pytest.approx(_plain_accuracy(c, test_set, positions), abs=1e-9)]
    assert a.training and c.training  # each back in its mode


@pytest.mark.training
def test_a_run_scores_its_curve_on_the_subset_and_its_result_on_the_full_set(tmp_path):
    spec = specs.teacher("resnet18", "fmnist-fine", origin="scratch", epochs=6)  # mini: evaluated at 5 and 6
    run = store.RunDir(spec, tmp_path)
    result = train.supervised(spec, run, progress=False)
    evaluated = [(h["epoch"], h["test_images"]) for h in result["history"] if h["test_acc"] is not None]
    assert evaluated == [(5, 1000), (6, 5000)]
    model = models.create("resnet18", 10)
    model.load_state_dict(run.weights())
    test_set = data.build_dataset("fmnist-fine", "test")
    # an independent count of the final weights; one image is 0.02 pt, so 1e-9 only forgives how the
    # percentage is rounded (100 * mean vs 100 * count / n differ in the last bit for some counts)
    assert result["test_acc"] == pytest.approx(_plain_accuracy(model, test_set), abs=1e-9)


def test_curves_say_which_test_images_their_points_came_from():
    import pandas as pd

    from kdlib import analysis
    history = pd.DataFrame({"run_id": ["a", "a", "a", "b"], "epoch": [1, 5, 10, 10],
                            "test_acc": [None, 50.0, 60.0, 61.0], "test_images": [None, 1000, 5000, 5000]})
    rows = pd.DataFrame({"run_id": ["a", "b"]})
    assert analysis.curve_note(history, rows) == ("intermediate epochs: 1,000-image test subset; "
                                                  "last epoch: full test set (5,000)")
    assert analysis.curve_note(history, rows[rows["run_id"] == "b"]) == "test accuracy on 5,000 images"
    assert analysis.curve_note(history.drop(columns="test_images"), rows) == ""  # runs from before it was recorded
