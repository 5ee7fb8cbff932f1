"""Test-wide set-up: every test writes under a temporary outputs folder, never the repo's."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def outputs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    old = os.environ.get("KDLIB_OUTPUTS")
    os.environ["KDLIB_OUTPUTS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("KDLIB_OUTPUTS", None)
    else:
        os.environ["KDLIB_OUTPUTS"] = old
