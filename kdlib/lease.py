"""A lock that holds across the nodes of a cluster: a lease file on the shared file system.

``fcntl.flock`` on NFS may lock only within one node (or not at all), so two jobs on two
nodes could train the same run. A ``Lease`` is a file created atomically with a hard link
(``os.link`` of a complete temp file: it appears whole or not at all, and exactly one
creator succeeds). It names its owner (host, pid, Slurm job) and is kept alive by a
background thread that touches it every ``lease_s / 4`` seconds while the owner works.

A waiter breaks a lease only when it is stale:

- its owner runs on this node (same host, kernel boot and pid namespace) and is gone;
- or the waiter has watched it unchanged for ``lease_s`` seconds on its own monotonic
  clock (no clocks are compared, so any skew between nodes is harmless);
- or its mtime is older than ``lease_s + skew_s`` by this node's clock (a lock left long
  ago is taken at once; a file server whose clock lags ours by up to ``skew_s`` cannot
  make a live lease look expired).

Breaking is race-free: the breaker first claims the stale lease's token with an atomic
create (one breaker per lease), renames the lease to a unique name, and checks that what
it moved is the stale lease (if a live one was moved in a race, it is put back).

Assumes of the file system: atomic ``link``, ``rename`` and ``O_EXCL`` create (NFSv3+,
Lustre, GPFS, local disks), close-to-open consistency (NFS's default; not ``nocto``) and
that a file's mtime is set when it is touched. Knobs: ``KDLIB_LEASE_S`` (default 60) and
``KDLIB_CLOCK_SKEW_S`` (default 30).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

LEASE_S = 60.0
SKEW_S = 30.0


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{name}={value!r} must be a number of seconds > 0; unset it for the default {default:g}")
    return seconds


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process on this node, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], fields[19]


def _node() -> str:
    """This node: host, kernel boot and pid namespace (a pid means something only within all three)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        boot, pidns = "?", "?"
    return f"{socket.gethostname()}/{boot}/{pidns}"


def _job() -> str | None:
    job = os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else job


def _read(path: Path) -> tuple[dict[str, Any], os.stat_result] | None:
    """The lease's contents and attributes, fresh from the server (opening revalidates on NFS)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):  # not a lease kdlib wrote: its age alone decides
        info = {}
    return (info if isinstance(info, dict) else {}), st


def describe(info: dict[str, Any]) -> str:
    job = f", Slurm job {info['job']}" if info.get("job") else ""
    return f"host {info.get('host', '?')} pid {info.get('pid', '?')}{job}"


class Lease:
    """An exclusive lease on ``path``; ``acquire`` / ``release``, refreshed by a thread while held."""

    def __init__(self, path: str | os.PathLike, lease_s: float | None = None, skew_s: float | None = None):
        self.path = Path(path)
        self.lease_s = lease_s if lease_s is not None else _env_seconds("KDLIB_LEASE_S", LEASE_S)
        self.skew_s = skew_s if skew_s is not None else _env_seconds("KDLIB_CLOCK_SKEW_S", SKEW_S)
        self.token: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: tuple[tuple, float] | None = None

    # -- taking it -----------------------------------------------------------------------
    def acquire(self, blocking: bool = True) -> bool:
        """Take the lease (waiting while a live owner holds it, when ``blocking``); True once held."""
        delay = 0.02
        while True:
            if self._try_create():
                self._start_refresh()
                return True
            seen = _read(self.path)
            if seen is None:
                continue  # released meanwhile: try again at once
            why = self._stale(*seen)
            if why is not None and self._break(seen[0].get("token"), seen[1].st_ino, why):
                continue
            if not blocking:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, max(0.05, self.lease_s / 8), 1.0)

    def _try_create(self) -> bool:
        token = uuid.uuid4().hex
        info = {"token": token, "host": socket.gethostname(), "node": _node(), "pid": os.getpid(),
                "start": (_proc_stat(os.getpid()) or ("", None))[1], "job": _job(), "created": time.time(),
                "lease_s": self.lease_s}
        tmp = self.path.with_name(f".{self.path.name}.{token}.new")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, json.dumps(info).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OSError(e.errno, f"cannot create the lock file {self.path} ({e.strerror}); free space or fix the "
                          f"permissions of {self.path.parent}") from e
        try:
            os.link(tmp, self.path)
            won = True
        except OSError:  # NFS may report a retransmitted link that did succeed as an error
            won = os.stat(tmp).st_nlink == 2
        finally:
            tmp.unlink(missing_ok=True)
        if won:
            self.token, self.lost, self._watch = token, False, None
        return won

    def _stale(self, info: dict[str, Any], st: os.stat_result) -> str | None:
        """Why the lease ``info`` is stale, or None while its owner may be alive."""
        lease_s = max(self.lease_s, float(info.get("lease_s") or 0))
        if info.get("node") == _node() and isinstance(info.get("pid"), int):
            proc = _proc_stat(info["pid"])
            if proc is None or proc[0] in ("Z", "X") or (info.get("start") and proc[1] != info["start"]):
                return "its process is gone"
        age = time.time() - st.st_mtime
        if age > lease_s + self.skew_s:
            return f"last refreshed {age:.0f} s ago; lease {lease_s:g} s + clock-skew margin {self.skew_s:g} s"
        key = (st.st_ino, st.st_mtime_ns, st.st_size, info.get("token"))
        now = time.monotonic()
        if self._watch is None or self._watch[0] != key:
            self._watch = (key, now)
            return None
        if now - self._watch[1] > lease_s:
            return f"unchanged for {now - self._watch[1]:.0f} s, longer than its lease of {lease_s:g} s"
        return None

    def _break(self, token: str | None, inode: int, why: str) -> bool:
        """Remove the stale lease ``token``; False when another process got there first."""
        claim = self.path.with_name(f"{self.path.name}.break-{token or f'inode{inode}'}")
        try:
            os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            try:  # a breaker that died mid-break leaves its claim: clear it once it is old
                if time.time() - claim.stat().st_mtime > self.lease_s + self.skew_s:
                    claim.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        try:
            seen = _read(self.path)
            if seen is None or seen[0].get("token") != token:
                return False
            moved = self._move_aside(token)
            if moved is not None:
                print(f"[kdlib] broke the stale lock {self.path} of {describe(moved)}: {why}", flush=True)
            self._watch = None
            return moved is not None
        finally:
            claim.unlink(missing_ok=True)

    def _move_aside(self, token: str) -> dict[str, Any] | None:
        """Rename the lease away and return its contents if it is ``token``'s; else put it back."""
        aside = self.path.with_name(f".{self.path.name}.gone-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return None
        seen = _read(aside)
        if seen is None or seen[0].get("token") != token:
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return None
        aside.unlink(missing_ok=True)
        return seen[0]

    # -- keeping it ----------------------------------------------------------------------
    def _start_refresh(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._refresh_loop, name=f"lease {self.path}", daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            self.refresh()

    def refresh(self) -> bool:
        """Touch the lease if it is still ours; else mark it ``lost`` (and warn once). True while ours."""
        if self.lost or self.token is None:
            return False
        seen = _read(self.path)
        if seen is None or seen[0].get("token") != self.token:
            self.lost = True
            holder = f" (now held by {describe(seen[0])})" if seen else ""
            warnings.warn(f"lost the lock {self.path}{holder}: this process was taken for dead; its "
                          "writes to the run are refused", RuntimeWarning, stacklevel=2)
            return False
        try:
            os.utime(self.path)
        except OSError:  # a transient error: the next refresh tries again
            pass
        return True

    def release(self) -> None:
        """Stop refreshing and remove the lease, if it is still ours."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        if self.token is not None and not self.lost:
            self._move_aside(self.token)
        self.token = None
