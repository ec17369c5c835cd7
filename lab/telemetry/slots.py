"""Instance slots: concurrent runs of one scenario on one host never share a series.

A run's `service.instance.id` (Prometheus `instance`) is `<host>:<scenario>:<variant>`, stable
so that re-running a scenario continues its series instead of adding new ones. Two runs of
the same scenario at the same time once interleaved in those series silently (the steps
counter reset 11 times in one paced pair; `increase()` read 3.4x the truth). Now each run
holds a slot for its lifetime: an exclusive flock on `<dir>/<key>.<n>.lock`. The first run
gets slot 1 and the plain key; a concurrent second run slot 2 and `<key>:2`, and so on. The
kernel releases a slot when its process ends, however it ends, so a killed run never
leaves one taken. Series churn: none for runs one after another; one set of series per
level of concurrency ever reached, not per run.

The directory is shared by every user of the host (`<tmp>/ml-obs-lab-slots`, sticky and
world-writable like /tmp), because runs of all users land in the same stack's series.
LAB_SLOTS_DIR names another one for runs that land in a stack of their own: `make test`'s
workers each run a private stack, so each gets its own directory (tests/conftest.py), and a
worker's run is not pushed to `<key>:2` by another worker's run of the same scenario.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

SLOTS_DIR = Path(tempfile.gettempdir()) / "ml-obs-lab-slots"
MAX_SLOTS = 64  # more concurrent runs of one scenario than any classroom has


class InstanceSlot:
    """The instance id of one run, held until release() (or the process's end)."""

    def __init__(self, key: str, directory: Path | None = None) -> None:
        directory = directory or Path(os.environ.get("LAB_SLOTS_DIR") or SLOTS_DIR)
        self.key = key
        self._fd: int | None = None
        self.number = 0
        self.instance_id = f"{key}:pid{os.getpid()}"  # only if every slot is taken or the dir is unusable
        try:
            _shared_dir(directory)
        except OSError:
            return
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
        for n in range(1, MAX_SLOTS + 1):
            fd = _open(directory / f"{safe}.{n}.lock")
            if fd is None:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._fd, self.number = fd, n
            self.instance_id = key if n == 1 else f"{key}:{n}"
            return

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> InstanceSlot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _shared_dir(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(directory, 0o1777)  # every user's runs share the slots; each removes only its own files
        except OSError:
            pass


def _open(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # another user's file we cannot open: that slot is theirs to use
        return None
    try:
        os.fchmod(fd, 0o666)  # so another user's run can take this slot later (umask aside)
    except OSError:
        pass
    return fd
