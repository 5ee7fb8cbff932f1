"""A fresh machine: make test / make demo install the system packages they lack, or say how; no test needs data to be collected."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "system-deps"


def fake(path: Path, body: str) -> Path:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


def system_deps(tmp_path: Path, *what: str, uid: int = 0, sudo: str = "false", data_dir: Path | None = None,
                **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run .ci/system-deps with the package folder at ``data_dir`` (empty by default) and a recording apt-get."""
    log = tmp_path / "apt.log"
    apt = fake(tmp_path / "apt-get", f'echo "$(id -u) $*" >> {log}\n')
    empty = tmp_path / "no-fashion-mnist"
    empty.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in ("KDLIB_DATA", "KDLIB_DOWNLOAD")}
    base.update(KDLIB_SYSTEM_FMNIST=str(data_dir or empty), KDLIB_APT=str(apt), KDLIB_SUDO=sudo,
                KDLIB_SETUP_UID=str(uid), **env)
    result = subprocess.run([str(SCRIPT), *what], capture_output=True, text=True, env=base, timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


def test_missing_fashion_mnist_is_installed_with_apt_as_root(tmp_path):
    result, calls = system_deps(tmp_path, "data")
    assert result.returncode == 0, result.stderr
    assert [c.split(" ", 1)[1] for c in calls] == ["update -qq", "install -y -qq dataset-fashion-mnist"]


def test_without_root_a_passwordless_sudo_installs_it(tmp_path):
    sudo_log = tmp_path / "sudo.log"
    sudo = fake(tmp_path / "sudo", f'echo "$*" >> {sudo_log}\n[ "$1" = -n ] && shift\nexec "$@"\n')
    result, calls = system_deps(tmp_path, "data", uid=1000, sudo=str(sudo))
    assert result.returncode == 0, result.stderr
    assert calls[-1].endswith("install -y -qq dataset-fashion-mnist")
    assert sudo_log.read_text().splitlines()[0] == "-n true"  # asked without a password prompt first
    assert any(line.endswith("install -y -qq dataset-fashion-mnist") for line in sudo_log.read_text().splitlines())


def test_without_root_or_sudo_it_stops_with_the_exact_command(tmp_path):
    result, calls = system_deps(tmp_path, "data", "chromium", uid=1000, sudo="false", PATH="/usr/bin:/bin")
    assert result.returncode == 1 and calls == []
    assert "sudo apt-get install -y dataset-fashion-mnist" in result.stderr
    assert "KDLIB_DATA" in result.stderr  # the offline alternative for the data


def test_nothing_is_installed_when_the_data_is_there(tmp_path):
    present = tmp_path / "pkg"
    present.mkdir()
    (present / "train-images-idx3-ubyte.gz").write_bytes(b"")
    result, calls = system_deps(tmp_path, "data", data_dir=present)
    assert result.returncode == 0 and calls == []
    user = tmp_path / "mine" / "fashion-mnist"
    user.mkdir(parents=True)
    (user / "train-images-idx3-ubyte").write_bytes(b"")
    result, calls = system_deps(tmp_path, "data", KDLIB_DATA=str(tmp_path / "mine"))
    assert result.returncode == 0 and calls == []


def test_an_unknown_requirement_is_refused(tmp_path):
    result, _ = system_deps(tmp_path, "cuda")
    assert result.returncode == 2 and "known: venv, data, chromium" in result.stderr


@pytest.mark.parametrize("target, first, then", [
    ("test", ".ci/system-deps data chromium slurm", "pytest"),
    ("test-fast", ".ci/system-deps data",
     "pytest -q -m \"not training and not browser and not notebook and not slow and not slurm\""),
    ("demo", ".ci/system-deps data", "papermill"),
])
def test_make_targets_install_what_they_need_before_running(target, first, then):
    lines = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = lines.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == first)
    assert any(then in line for line in lines[at + 1:]), lines


def test_ci_runs_the_real_apt_path():
    text = (REPO / ".ci" / "run").read_text()
    assert ".ci/system-deps venv data chromium" in text and "KDLIB_APT" not in text and "make test" in text


@pytest.mark.slow
def test_collecting_the_tests_touches_no_data(tmp_path):
    # With every Fashion-MNIST source gone (an empty cache, no KDLIB_DATA, no download, and
    # torchvision's reader refusing), collection must still find every test.
    code = ("import sys, pytest, torchvision.datasets as tvd\n"
            "def refuse(*a, **k): raise RuntimeError('a test module read Fashion-MNIST at import')\n"
            "tvd.FashionMNIST = refuse\n"
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', sys.argv[1]]))\n")
    env = {k: v for k, v in os.environ.items() if k != "KDLIB_DATA"}
    env.update(KDLIB_OUTPUTS=str(tmp_path / "outputs"), KDLIB_DOWNLOAD="0")
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "tests")], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "error" not in result.stdout.lower().split("\n")[-2], result.stdout[-3000:]
    assert not (tmp_path / "outputs" / "cache").exists()
