"""The run lock as a cluster needs it: a lease file, exclusive across processes and nodes.

Owners "on another node" run in their own pid namespace (``unshare --pid``): from here
their pid means nothing, exactly as for a process on another machine, so only the lease's
expiry can free their lock.
"""
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from kdlib import lease, specs, store

LEASE_S = 2.0


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_LEASE_S", str(LEASE_S))
    monkeypatch.setenv("KDLIB_CLOCK_SKEW_S", "3")
    spec = specs.distill(specs.teacher("resnet50", "fmnist-fine"), "resnet18", temperature=4)
    return store.RunDir(spec, tmp_path / "store")


# ----------------------------------------------------------------------------- racing processes

def _increment(run, times, barrier):
    """Read-modify-write a counter under the lock, slowly: any overlap loses an increment."""
    barrier.wait()
    for _ in range(times):
        with run.lock():
            file = run.path / "counter"
            value = int(file.read_text()) if file.exists() else 0
            time.sleep(0.01)
            file.write_text(str(value + 1))


@pytest.mark.slow
def test_six_processes_incrementing_under_the_lock_lose_no_increment(run):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_increment, args=(run, 10, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 6
    assert int((run.path / "counter").read_text()) == 60
    assert not (run.path / "lease").exists()  # released by the last owner


def _finish_once(run, barrier, log):
    barrier.wait()
    with run.lock():
        if not run.done:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
            run.finish({"test_acc": 1.0, "history": []})


@pytest.mark.slow
def test_racing_processes_write_one_result(run, tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    log = tmp_path / "writers.log"
    procs = [ctx.Process(target=_finish_once, args=(run, barrier, log)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 6
    assert len(log.read_text().split()) == 1 and run.done


def test_a_second_lock_attempt_without_blocking_is_refused_while_the_first_holds(run):
    with run.lock() as first:
        assert first
        with run.lock(blocking=False) as second:
            assert second is False
    with run.lock(blocking=False) as again:
        assert again


# ----------------------------------------------------------------------------- an owner on another node

OWNER = r"""
import os, sys, time
from kdlib.lease import Lease
held = Lease(sys.argv[1])
assert held.acquire()
print("held", flush=True)
time.sleep(3600)
"""


def _owner_elsewhere(lease_file):
    """A process holding ``lease_file`` whose pid we cannot check (its own pid namespace)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"]).returncode != 0:
        pytest.skip("this machine refuses `unshare --pid` (needs root), which stands in for another node")
    env = {**os.environ, "KDLIB_LEASE_S": str(LEASE_S)}
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", OWNER,
                             str(lease_file)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill_tree(proc):
    """SIGKILL the owner (the child of ``unshare``) and reap it."""
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    proc.kill()
    proc.wait(timeout=30)


def _take_over(run, barrier, log):
    barrier.wait()
    with run.lock():
        if not run.done:
            with open(log, "a") as f:
                f.write(f"{time.monotonic()}\n")
            run.finish({"test_acc": 1.0, "history": []})


@pytest.mark.slow
def test_an_owner_killed_on_another_node_loses_its_lock_when_the_lease_expires(run, tmp_path):
    run.path.mkdir(parents=True)
    owner = _owner_elsewhere(run.path / "lease")
    try:
        # Alive and refreshing: its lock holds well past one lease duration.
        deadline = time.monotonic() + 2.5 * LEASE_S
        while time.monotonic() < deadline:
            with run.lock(blocking=False) as held:
                assert held is False
            time.sleep(0.2)
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(3)
        log = tmp_path / "writers.log"
        waiters = [ctx.Process(target=_take_over, args=(run, barrier, log)) for _ in range(2)]
        for p in waiters:
            p.start()
        barrier.wait()
        time.sleep(0.5)  # the waiters have seen the live lease
        killed_at = time.monotonic()
        _kill_tree(owner)
        for p in waiters:
            p.join(timeout=120)
    finally:
        _kill_tree(owner)
    assert [p.exitcode for p in waiters] == [0, 0]
    taken = [float(t) for t in log.read_text().split()]
    assert len(taken) == 1 and run.done  # exactly one of the two waiters wrote the result
    # Not before the lease could have expired (its last refresh was at most lease_s/4 before the kill).
    assert 0.75 * LEASE_S - 0.3 <= taken[0] - killed_at < 10 * LEASE_S


@pytest.mark.slow
def test_an_owner_killed_on_this_node_frees_its_lock_at_once(run, capsys):
    run.path.mkdir(parents=True)
    env = {**os.environ, "KDLIB_LEASE_S": "600"}
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(run.path / "lease")], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    started = time.monotonic()
    with run.lock(blocking=False) as held:
        assert held  # its pid is gone from this node: no need to wait for a 600 s lease
    assert time.monotonic() - started < 5
    assert "its process is gone" in capsys.readouterr().out


STALLED = r"""
import json, sys
from kdlib import specs, store
run = store.RunDir(specs.from_dict(json.loads(sys.argv[1])), sys.argv[2])
with run.lock():
    print("held", flush=True)
    sys.stdin.readline()  # meanwhile: stopped, taken for dead, its lock taken over
    try:
        run.finish({"test_acc": 0.0, "history": []})
        print("wrote", flush=True)
    except RuntimeError as e:
        print("refused:", e, flush=True)
"""


def _lease_token(run):
    try:
        return json.loads((run.path / "lease").read_text())["token"]
    except (FileNotFoundError, ValueError):
        return None


@pytest.mark.slow
def test_an_owner_stalled_past_its_lease_is_taken_over_and_then_writes_nothing(run, tmp_path):
    """Its lease is broken; on this node flock still guards it, so the new owner waits for it to give up."""
    env = {**os.environ, "KDLIB_LEASE_S": str(LEASE_S)}
    proc = subprocess.Popen([sys.executable, "-c", STALLED, json.dumps(specs.to_dict(run.spec)),
                             str(run.path.parent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "held"
        stalled = _lease_token(run)
        proc.send_signal(signal.SIGSTOP)  # a node that stalls: its refresh thread stops too
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(2)
        taker = ctx.Process(target=_finish_once, args=(run, barrier, tmp_path / "writers.log"))
        taker.start()
        barrier.wait()
        deadline = time.monotonic() + 60
        while _lease_token(run) in (stalled, None) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _lease_token(run) not in (stalled, None)  # the lease was broken and taken
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate("go\n", timeout=120)
        taker.join(timeout=120)
    finally:
        proc.kill()
    assert out.startswith("refused:") and "taken over by another process" in out
    assert taker.exitcode == 0 and len((tmp_path / "writers.log").read_text().split()) == 1
    assert run.result()["test_acc"] == 1.0


# ----------------------------------------------------------------------------- clocks

def _lease_of_another_node(path, age_s):
    """A lease file as a live owner elsewhere writes it, whose mtime looks ``age_s`` old by our clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"token": "elsewhere", "host": "node-b", "node": "node-b/boot/1", "pid": 4242,
                                "job": "777_3", "lease_s": LEASE_S}))
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_a_lease_that_looks_expired_by_less_than_the_clock_skew_margin_is_kept(run):
    # The file server's clock lags ours by 2 s (< the 3 s margin): a fresh touch looks 2 s + lease_s old.
    _lease_of_another_node(run.path / "lease", LEASE_S + 2)
    with run.lock(blocking=False) as held:
        assert held is False
    assert json.loads((run.path / "lease").read_text())["token"] == "elsewhere"


def test_a_lease_older_than_lease_plus_margin_is_broken_at_once_and_the_breaking_is_reported(run, capsys):
    _lease_of_another_node(run.path / "lease", LEASE_S + 3 + 1)
    with run.lock(blocking=False) as held:
        assert held
        assert json.loads((run.path / "lease").read_text())["pid"] == os.getpid()
    out = capsys.readouterr().out
    assert "broke the stale lock" in out and "of host node-b pid 4242, Slurm job 777_3: last refreshed 6 s ago" in out


def test_a_lease_stamped_in_the_future_expires_after_lease_s_of_no_change_on_our_clock(run, capsys):
    # The server's clock runs an hour ahead: the mtime says nothing; we watch the file instead.
    _lease_of_another_node(run.path / "lease", -3600)
    started = time.monotonic()
    with run.lock() as held:
        waited = time.monotonic() - started
        assert held
    assert LEASE_S <= waited < 5 * LEASE_S
    assert "longer than its lease of 2 s" in capsys.readouterr().out


@pytest.mark.slow
def test_four_processes_breaking_one_stale_lease_at_once_write_one_result(run, tmp_path):
    _lease_of_another_node(run.path / "lease", 3600)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    log = tmp_path / "writers.log"
    procs = [ctx.Process(target=_finish_once, args=(run, barrier, log)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    assert len(log.read_text().split()) == 1 and run.done
    assert not list(run.path.glob("lease.break-*")) and not list(run.path.glob(".lease.gone-*"))


def test_a_lease_file_that_is_not_json_is_broken_once_it_is_old(run, capsys):
    run.path.mkdir(parents=True)
    (run.path / "lease").write_bytes(b"\x00garbage")
    t = time.time() - (LEASE_S + 3 + 1)
    os.utime(run.path / "lease", (t, t))
    with run.lock(blocking=False) as held:
        assert held
    assert "broke the stale lock" in capsys.readouterr().out


def test_lease_knobs_must_be_positive_numbers(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLIB_LEASE_S", "soon")
    with pytest.raises(ValueError, match=r"KDLIB_LEASE_S='soon' must be a number of seconds > 0"):
        lease.Lease(tmp_path / "lease")
