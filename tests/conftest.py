"""Test-wide set-up: every test writes under a temporary outputs folder, never the repo's.

Tests that train are marked ``training`` (``make test-fast`` leaves them out); a test
without the mark that reaches the training loop in this process fails, naming the mark.
"""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def outputs_root(tmp_path_factory):
    """``KDLIB_OUTPUTS`` for the whole session (a test may set its own with monkeypatch)."""
    root = tmp_path_factory.mktemp("outputs")
    old = os.environ.get("KDLIB_OUTPUTS")
    os.environ["KDLIB_OUTPUTS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("KDLIB_OUTPUTS", None)
    else:
        os.environ["KDLIB_OUTPUTS"] = old


@pytest.fixture(autouse=True)
def training_is_marked(request, monkeypatch):
    """Keep the ``training`` mark honest: unmarked tests may not enter ``kdlib.train.train_pass``."""
    if request.node.get_closest_marker("training") is not None:
        return
    from kdlib import train

    def refuse(*args, **kwargs):
        raise RuntimeError(f"{request.node.nodeid} trains a model (kdlib.train.train_pass) but is not marked "
                           "@pytest.mark.training; mark it so `make test-fast` leaves it out")

    monkeypatch.setattr(train, "train_pass", refuse)
