"""The `lab` command as a user meets it: help, errors, exit codes, runs without a stack."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import lab as lab_package
from lab import cli
from lab.cli import main
from lab.repo import ROOT


def lab(*args, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is released


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["list", "--help"], ["show", "--help"]])
def test_help_everywhere(args):
    r = lab(*args)
    assert r.returncode == 0 and "usage: lab" in r.stdout


def test_list_shows_every_scenario():
    r = lab("list")
    assert r.returncode == 0
    assert "overfit" in r.stdout and "MLLabOverfitting" in r.stdout


def test_show_tells_the_story():
    r = lab("show", "overfit")
    assert r.returncode == 0
    assert "Root cause" in r.stdout and "What to do" in r.stdout and '"train_size": 150' in r.stdout


def test_unknown_scenario_lists_known_ones_and_fails():
    r = lab("run", "overfitting", "--fast")
    assert r.returncode == 2
    assert "unknown scenario 'overfitting'" in r.stderr and "overfit" in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_setting_names_the_field_and_allowed_values():
    r = lab("run", "overfit", "--fast", "--set", "optimizer.name=rmsprop")
    assert r.returncode == 2
    assert "optimizer.name" in r.stderr and "'sgd', 'adam' or 'adamw'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,field", [(["--speed", "0"], "--speed"), (["--seed", "-1"], "--seed"),
                                        (["--telemetry", "maybe"], "--telemetry")])
def test_invalid_options_name_the_option(args, field):
    r = lab("run", "overfit", "--fast", *args)
    assert r.returncode == 2 and field in r.stderr


def test_data_setting_the_dataset_cannot_satisfy():
    r = lab("run", "overfit", "--fast", "--set", "data.train_size=5000")
    assert r.returncode == 2 and "data.train_size=5000" in r.stderr and "Traceback" not in r.stderr


def test_without_a_collector_the_run_trains_shows_signals_and_says_how_to_start_the_stack(tmp_path):
    port = _closed_port()
    summary = tmp_path / "s.json"
    r = lab("run", "overfit", "--fast", "--seed", "1", "--summary-json", str(summary),
            env_extra={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert r.returncode == 0, r.stderr
    assert f"No OpenTelemetry collector at http://127.0.0.1:{port}" in r.stderr  # a warning: stderr
    # progress from the first second, before the first signal line, on stderr with the other diagnostics
    assert r.stderr.startswith("Starting overfit (fault): loading PyTorch ...")
    assert r.stderr.index("loading data ...") < r.stderr.index("building the model ...")
    assert r.stdout.startswith("overfit (fault) · seed 1 · 600 steps · fast")
    assert "make up" in r.stderr
    assert "ratio" in r.stdout and "step " in r.stdout  # the signals, line by line (not a terminal)
    assert "Traceback" not in r.stdout + r.stderr
    s = json.loads(summary.read_text())
    assert s["steps"] == 600 and s["loss_ratio_above_threshold"] is not None


def test_a_collector_that_is_down_never_crashes_a_run(tmp_path):
    # --telemetry on forces the OTLP exporters although nothing listens: every
    # export fails, the run still finishes, the failures are reported once, and the exit
    # status says that nothing was delivered (3).
    port = _closed_port()
    r = lab("run", "overfit", "--fast", "--telemetry", "on", "--set", "train.epochs=10",
            env_extra={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_METRIC_EXPORT_INTERVAL": "200"},
            timeout=180)
    assert r.returncode == 3, r.stderr
    assert "telemetry exports failed" in r.stderr and "nothing was delivered" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert "Run completed: 50 steps" in r.stdout


# -- no traceback reaches a user: bad values, interrupts, a closed pipe -------------------------

BAD_VALUES = [
    # (command line, the option the message must name)
    (["run", "overfit", "--fast", "--speed", "0"], "--speed"),
    (["run", "overfit", "--fast", "--speed", "-1"], "--speed"),
    (["run", "overfit", "--fast", "--speed", "nan"], "--speed"),
    (["run", "overfit", "--fast", "--speed", "inf"], "--speed"),
    (["run", "overfit", "--fast", "--speed", "1e9"], "--speed"),
    (["run", "overfit", "--fast", "--speed", "fast"], "--speed"),
    (["run", "overfit", "--fast", "--seed", "-1"], "--seed"),
    (["run", "overfit", "--fast", "--seed", "1.5"], "--seed"),
    (["run", "overfit", "--fast", "--seed", "99999999999999999999"], "--seed"),
    (["run", "overfit", "--fast", "--telemetry", "maybe"], "--telemetry"),
    (["run", "overfit", "--fast", "--set", "optimizer.lr=nan"], "optimizer.lr"),
    (["run", "overfit", "--fast", "--set", "optimizer.lr=inf"], "optimizer.lr"),
    (["run", "overfit", "--fast", "--set", "nonsense"], "--set"),
    (["run", "overfit", "--record", "x.json", "--telemetry", "on"], "--record"),
    (["run", "no-such-scenario"], "unknown scenario"),
    (["show", "no-such-scenario"], "unknown scenario"),
    (["list", "--bogus"], "--bogus"),
    (["triage", "start", "--speed", "0"], "--speed"),
    (["triage", "start", "--speed", "nan"], "--speed"),
    (["triage", "start", "--seed", "-3"], "--seed"),
    (["triage", "start", "--seed", "abc"], "--seed"),
    (["triage", "fix", "--speed", "inf"], "--speed"),
    (["triage", "answer"], "diagnosis"),
    (["triage", "hint"], "no case is open"),
    (["triage", "answer", "overfitting"], "no case is open"),
    (["triage", "reveal"], "no case is open"),
    (["triage", "status", "--json"], "no case is open"),
    (["triage", "fix"], "no case is open"),
    (["triage", "dance"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.parametrize("argv,named", BAD_VALUES, ids=[" ".join(a) or "(nothing)" for a, _ in BAD_VALUES])
def test_every_entry_point_rejects_bad_values_with_status_2_and_no_traceback(argv, named, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "triage" / "current.json").exists()  # no case was opened on the way


def test_an_unexpected_error_is_one_line_with_a_pointer_to_debug(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "lab: error: RuntimeError: something inside broke (run again with --debug to see the traceback)"
    assert main(["list", "--debug"]) == 1  # the flag is global: before or after the command
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_version_and_machine_readable_list_and_show(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lab {lab_package.__version__}"
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["invalid"] == []
    overfit = next(s for s in listed["scenarios"] if s["name"] == "overfit")
    assert overfit == {"name": "overfit", "kind": "training", "title": overfit["title"], "has_fix": True,
                       "alerts": ["MLLabOverfitting"]}
    assert main(["show", "overfit", "--fix", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["variant"] == "fix" and shown["data"]["train_size"] == 1297 and shown["story"]["diagnosis"] == "overfitting"


def _closed_stdout(*args, timeout=300):
    """Run `lab ARGS` with a stdout whose reader is already gone (as `| head -0` leaves it)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, stdout=w, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [["list"], ["show", "overfit", "--json"], ["triage", "diagnoses"], ["triage", "scores", "--json"],
                                  ["run", "overfit", "--fast", "--telemetry", "off", "--set", "train.epochs=2"]])
def test_a_closed_stdout_ends_quietly_with_status_141(args):
    p = _closed_stdout(*args)
    assert p.returncode == 141, p.stderr
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr


def test_ctrl_c_while_starting_up_exits_130_without_a_traceback():
    # 0.25 s: the interpreter is up and lab/__main__.py's handler is installed, but the
    # imports of the CLI (OpenTelemetry) and of the training family (torch) are still going.
    p = subprocess.Popen([sys.executable, "-m", "lab", "run", "overfit", "--plain", "--telemetry", "off"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.25)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err + out


def test_ctrl_c_while_the_family_imports_lets_the_import_finish_then_stops():
    # Interrupted in the middle of torch's import, `lab run` went on training, or failed with an
    # ImportError or RecursionError, aborted, or died by SIGINT (about 1 in 10 of 120 interrupts
    # 0.5-1.75 s in): the family's import now holds Ctrl-C and SIGTERM back until it is complete.
    code = textwrap.dedent("""
        import os, signal, sys, threading
        from lab.families import family_of
        from lab.specs.loader import load_scenario
        spec = load_scenario("overfit")
        assert "lab.training.run" not in sys.modules
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            family_of(spec)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted after the import:", "lab.training.run" in sys.modules)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "interrupted after the import: True", p.stdout + p.stderr


def _block_int_launcher() -> list[str]:
    """The launcher the Makefile puts before `python -m lab` (its LAB variable)."""
    out = subprocess.run(["make", "-s", "-n", "list"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    line = next(x for x in out.splitlines() if " -m lab list" in x)
    return line.split()[: line.split().index("-m") - 1]


def test_the_makefile_holds_ctrl_c_back_until_the_handler_is_installed():
    launcher = _block_int_launcher()
    if subprocess.run(["env", "--block-signal=INT", "true"], capture_output=True).returncode != 0:
        assert launcher == []  # no GNU env: the Makefile falls back to a bare interpreter
        return
    assert launcher == ["env", "--block-signal=INT"]


@pytest.mark.parametrize("delay_ms", range(0, 64, 4))
def test_ctrl_c_in_the_first_milliseconds_exits_130_without_a_traceback(delay_ms):
    # The interpreter's own start-up (site, runpy) runs before any lab code can install a handler;
    # a bare `python -m lab` interrupted there prints Python's "Fatal Python error ... KeyboardInterrupt".
    # Held back by the Makefile's launcher, the interrupt arrives once lab/__main__.py is ready.
    launcher = _block_int_launcher()
    if not launcher:
        pytest.skip("no GNU env --block-signal here: only lab/__main__.py's handler guards (tested above)")
    p = subprocess.Popen([*launcher, sys.executable, "-m", "lab", "list"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_ms / 1000)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    # 130 from our handler; -SIGINT when the interrupt lands before the launcher blocked it (no output)
    assert p.returncode in (130, -signal.SIGINT), (p.returncode, err)


def test_ctrl_c_during_a_run_stops_it_with_a_summary_and_exit_130():
    p = subprocess.Popen([sys.executable, "-m", "lab", "run", "overfit", "--plain", "--telemetry", "off"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stdout:  # the view flushes every line: wait for the first signal line
        lines.append(line)
        if line.startswith("step "):
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Run interrupted" in "".join(lines) + out
    assert "Traceback" not in err + out


def test_ctrl_c_during_a_practice_case_keeps_it_open_and_exits_130(tmp_path):
    env = {**os.environ, "LAB_STATE_DIR": str(tmp_path)}
    p = subprocess.Popen([sys.executable, "-m", "lab", "triage", "start", "--seed", "7", "--plain", "--telemetry", "off"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith(("step ", "window ", "run ")):  # a case shows its progress as "run  12%"
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "case is still open" in out and "Traceback" not in err + out
    assert lab_state_case(tmp_path)["run_outcome"] == "interrupted"


def lab_state_case(state: "os.PathLike") -> dict:
    return json.loads((Path(state) / "triage" / "current.json").read_text())


def test_list_reports_and_skips_a_bad_scenario_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "overfit.toml").write_text((ROOT / "scenarios" / "overfit.toml").read_text())
    (tmp_path / "broken.toml").write_text("this is not = = toml\n")
    (tmp_path / "typo.toml").write_text('base = "overfit"\n[optimizer]\nlearning_rate = 1\n')
    monkeypatch.setenv("LAB_SCENARIOS_DIR", str(tmp_path))
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "overfit" in out and "broken" not in out and "typo" not in out
    assert "skipped scenario 'broken'" in err and "not valid TOML" in err
    assert "skipped scenario 'typo'" in err and "optimizer.learning_rate: unknown setting; valid here: lr" in err
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed["scenarios"]] == ["overfit"]
    assert [b["name"] for b in listed["invalid"]] == ["broken", "typo"]


def test_set_errors_name_set_and_identity_cannot_be_set(capsys):
    assert main(["run", "overfit", "--fast", "--set", "optimizer.lr=-1"]) == 2
    assert "invalid scenario settings in --set optimizer.lr=-1 (over scenarios/overfit.toml)" in capsys.readouterr().err
    assert main(["run", "overfit", "--fast", "--set", "name=mystery"]) == 2
    assert "name is part of the scenario's identity" in capsys.readouterr().err


def test_schema_command_prints_the_published_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
