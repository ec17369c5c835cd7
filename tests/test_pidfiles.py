"""Pid files of the native stack (scripts/native/lib.sh): a process is recognised by its start
in clock ticks since boot, which a wall-clock step cannot move (ps's start time can: down.sh then
took a running stack for gone and left it running). No stack runs here: the shell functions
up.sh and down.sh use are called on a plain child process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.repo import ROOT
from lab.stackproc import proc_start

LIB = ROOT / "scripts" / "native" / "lib.sh"


def sh(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'source "{LIB}"; {script}', "sh", *args], capture_output=True, text=True)


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def alive(pidfile) -> bool:
    return sh('lab_pidfile_alive "$1"', str(pidfile)).returncode == 0


def test_the_start_is_clock_ticks_since_boot_the_same_from_shell_and_python(child):
    got = sh('lab_proc_start "$1"', str(child.pid)).stdout.strip()
    assert got.startswith("boot+") and got[5:].isdigit()
    assert got == proc_start(child.pid)
    fields = open(f"/proc/{child.pid}/stat").read().rsplit(") ", 1)[1].split()
    assert got == f"boot+{fields[19]}"  # field 22, starttime


def test_a_pid_file_names_its_process_and_no_other(child, tmp_path):
    f = tmp_path / "x.pid"
    f.write_text(f"{child.pid}\n{proc_start(child.pid)}\n")
    assert alive(f)
    f.write_text(f"{child.pid}\nboot+{int(proc_start(child.pid)[5:]) - 1}\n")  # a recycled pid
    assert not alive(f)
    assert not alive(tmp_path / "missing.pid")


def test_a_pid_file_of_a_process_that_ended_is_not_alive(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = proc_start(proc.pid)
    proc.wait()
    f = tmp_path / "x.pid"
    f.write_text(f"{proc.pid}\n{start}\n")
    assert not alive(f)


def test_a_pid_file_written_before_boot_ticks_is_still_read(child, tmp_path):
    lstart = subprocess.run(["ps", "-o", "lstart=", "-p", str(child.pid)], capture_output=True, text=True).stdout.strip()
    f = tmp_path / "x.pid"
    f.write_text(f"{child.pid}\n{lstart}\n")
    assert alive(f)  # a stack started by the older up.sh can still be stopped

