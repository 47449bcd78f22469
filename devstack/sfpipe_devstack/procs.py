"""Pid files and process identity for the processes the devstack starts.

A pid alone does not say that the process is still ours: after a reboot or a crash the
number may belong to something else. Each pid file therefore also records the process's
start time (from ``/proc``) and command line, and a process counts as ours only when
both still match. ``sfpipe down`` stops exactly those, by process group, so that the
Java child of the Pub/Sub emulator's launcher goes with it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ")"
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when unknown."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def is_zombie(pid: int) -> bool:
    """Whether the process has exited but not been reaped."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def processes_mentioning(text: str) -> list[int]:
    """Live processes (other than this one) whose command line or environment names ``text``.

    A home directory appears in the environment of everything started for it, so this finds
    what a stop left behind even when it escaped its process group.
    """
    found = []
    needle = text.encode()
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (empty when ``/proc`` cannot be read)."""
    members: list[int] = []
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return members
    for entry in entries:
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and len(fields) > 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs."""
    if PROC.exists():
        return bool(group_members(pgid))
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send a signal to a process group, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_groups(pgids: list[int], timeout: float = 4.0) -> list[int]:
    """Stop several process groups at once: SIGTERM, wait, then SIGKILL what is left.

    Returns the groups that had to be killed. Stopping them together keeps ``sfpipe
    down`` within its time budget whatever the number of services.
    """
    for pgid in pgids:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = list(pgids)
    while remaining and time.monotonic() < deadline:
        for pgid in remaining:
            _reap(pgid)
        remaining = [p for p in remaining if group_alive(p)]
        if remaining:
            time.sleep(0.05)
    for pgid in remaining:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(group_alive(p) for p in remaining):
        for pgid in remaining:
            _reap(pgid)
        time.sleep(0.05)
    return remaining


def listener_pids(port: int) -> list[int]:
    """Pids that hold a listening TCP socket on ``port`` (best effort, Linux only)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return []
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.append(int(entry.name))
                    break
        except OSError:
            continue
    return sorted(found)


def describe_pid(pid: int) -> str:
    """`pid 123 (python -m x)` for messages."""
    try:
        cmd = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid} ({cmd[:120]})" if cmd else f"pid {pid}"


@dataclass
class PidRecord:
    """What ``sfpipe up`` wrote about one process it started."""

    name: str
    pid: int
    pgid: int
    ports: dict[str, int]
    command: list[str]
    log: str
    start_ticks: int | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    health: str = ""

    def is_running(self) -> bool:
        """Whether the recorded process still runs and is the one that was started."""
        if not alive(self.pid):
            return False
        ticks = start_ticks(self.pid)
        return self.start_ticks is None or ticks is None or ticks == self.start_ticks


class PidDir:
    """``<home>/run``: one JSON pid file per process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, name: str) -> Path:
        """The pid file of a process."""
        return self.path / f"{name}.pid"

    def write(self, record: PidRecord) -> None:
        """Record a started process (atomically: a reader never sees half a file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.file(record.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(self.file(record.name))

    def read(self, name: str) -> PidRecord | None:
        """A process's record, or None when there is none or it is unreadable."""
        path = self.file(name)
        try:
            raw = json.loads(path.read_text())
            return PidRecord(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def exists(self, name: str) -> bool:
        """Whether a pid file is there (readable or not)."""
        return self.file(name).exists()

    def remove(self, name: str) -> None:
        """Forget a process."""
        self.file(name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        """Every process with a pid file."""
        if not self.path.exists():
            return []
        return sorted(p.stem for p in self.path.glob("*.pid"))
