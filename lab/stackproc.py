"""The native stack's components as processes: found by their pid files, stopped, started again.

scripts/native/up.sh starts each component detached and records it in
`$LAB_STATE_DIR/run/<name>.pid`: the pid, then the process's start (clock ticks since boot,
lab_proc_start in scripts/native/lib.sh), so a recycled pid is never mistaken for it. A
component stopped here is started again with the command line, environment and working
directory it had (read from /proc before it was stopped), its output appended to
`logs/<name>.log`, and its new pid written where down.sh finds it. Practice mode's pipeline
confounders and the drills use this; a component whose pid file is missing, stale or
another user's cannot be taken (ComponentError), and nothing is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ComponentError(Exception):
    """The component cannot be controlled from here (no pid file, not running, not ours)."""


def proc_start(pid: int) -> str:
    """A process's start as run/<name>.pid records it: clock ticks since boot, which no wall-clock step moves."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return f"boot+{fields[19]}"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return True
    return "zombie" in state.lower()


@dataclass
class Component:
    """One running component of a native stack, as its pid file records it."""

    name: str
    state_dir: Path
    pid: int
    argv: list[str] = field(repr=False)
    env: dict[str, str] = field(repr=False)
    cwd: str

    @classmethod
    def find(cls, state_dir: Path, name: str) -> Component:
        pid_file = Path(state_dir) / "run" / f"{name}.pid"
        try:
            lines = pid_file.read_text().split()
            pid = int(lines[0])
            if len(lines) < 2 or proc_start(pid) != lines[1]:
                raise ComponentError(f"{name}: {pid_file} names a process that is no longer running")
            proc = Path(f"/proc/{pid}")
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            env = dict(kv.decode().split("=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
            cwd = os.readlink(proc / "cwd")
        except (OSError, ValueError, IndexError) as exc:  # no file, no process, or another user's process
            raise ComponentError(f"{name}: cannot take the process of {pid_file}: {exc}") from exc
        if not argv:
            raise ComponentError(f"{name}: process {pid} has no command line (exiting)")
        return cls(name, Path(state_dir), pid, argv, env, cwd)

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> bool:
        """Send `sig` and wait for the process to exit; True when it did within `timeout`."""
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while not _gone(self.pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def start(self) -> int:
        """Start the component again as it was; returns the new pid (recorded in its pid file)."""
        log_path = self.state_dir / "logs" / f"{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            new = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, start_new_session=True)
        wait_exec(new.pid)
        (self.state_dir / "run" / f"{self.name}.pid").write_text(f"{new.pid}\n{proc_start(new.pid)}\n")
        self.pid = new.pid
        return new.pid


def wait_exec(pid: int, timeout: float = 10.0) -> None:
    """Until the new process shows its command line: /proc/<pid>/cmdline is empty while the exec is
    still under way, which on a loaded machine (a cold build beside it) was seen to last long enough
    for a reader of the pid file to take the process for one that is exiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        except OSError:
            return  # gone already: the caller's next step says so
        time.sleep(0.01)
