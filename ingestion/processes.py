"""Process groups started by pairstats (the topology, the Superset server): alive, kill, reap,
stop with a grace period; free TCP ports on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable

__all__ = ["alive", "descendants", "free_ports", "kill", "reap", "stop_groups", "stop_process"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our child, not reaped yet) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal ``pid``'s process group and every descendant (a task process may have left it)."""
    targets = [pid, *descendants(pid)]
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for p in targets:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap() -> None:
    """Collect our exited children (the processes ``start`` spawned in this interpreter)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (bound together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop_groups(pids: Iterable[int], *, grace: float = 30) -> set[int]:
    """SIGTERM each live pid's process group (and descendants), SIGKILL what is left after
    ``grace`` seconds. Returns the pids that were alive."""
    family = {pid: [pid, *descendants(pid)] for pid in pids if alive(pid)}
    for pid in family:
        kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for group in family.values() for p in group):
        reap()
        time.sleep(0.5)
    for group in family.values():
        if any(alive(p) for p in group):
            for p in group:
                kill(p)
    reap()
    return set(family)


def stop_process(proc: subprocess.Popen, *, grace: float = 20) -> None:
    """SIGTERM to the process group of ``proc`` (started with ``start_new_session=True``), SIGKILL
    if it lingers past ``grace`` seconds; ``proc`` is waited for either way."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
