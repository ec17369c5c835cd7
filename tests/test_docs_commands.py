"""Every command the README and docs show is run by this test, or mapped to the test that covers it.

Sources: README.md and docs/**/*.md. Every fenced block must say its language, so that no
command hides in an untagged block: `bash`/`sh`/`shell` blocks are commands (one a line, `#`
comments dropped; an alternative in a comment, `# or: make test-stack`, counts as a command
too), `console` blocks are a transcript (commands are the `$ ` lines, the rest is output,
which is compared with the real output), anything else (`text`, `toml`, `promql`, ...) is not
a command. A `toml` block whose first line is `# scenarios/NAME.toml` is written as that
scenario file (in a copy of scenarios/) for the commands after it.

What happens to a command:

- `make TARGET ...`: TARGET must be in `make help` (`scenario-NAME`: NAME a known scenario).
  If the command is in MAPPED below, that is all. Otherwise `make -n` must show that the
  target runs `.venv/bin/python -m lab ...`, and that lab command is run as below.
- `.venv/bin/lab ...`, `lab ...`: run by `lab.cli.main` in its fast variant (fast_variant):
  `run` gets `--fast`; `triage start` and `triage fix` get `--fast`, and a `triage start`
  without `--seed` (a random case) gets `--seed 1` (a fixed, quick case: diverged stops
  after 70 steps). No collector and no Prometheus answer (closed ports). Each document's
  commands other than `lab run` run in the order the document gives them, in its own
  LAB_STATE_DIR (a hint needs the case the document started); `lab run`s are independent
  and run once each (also when they differ only in what --fast ignores: `--speed`,
  `--plain`). Two at a time, in forked workers of this process (what the runs import is
  imported once, before the fork: warm_up). Exit status 0; `triage answer` may also say 1 (a wrong diagnosis is part of
  the story).
- anything else (the stack, curl against it, pytest itself) must be in MAPPED: the command,
  the test file that covers it and a string that file must contain (the evidence).

Unknown or unmapped commands and missing make targets fail, naming file and line.
Inline commands (`make X`, `lab X --option`, `python -m lab.x`) are checked without running
them: the make target, the lab subcommand and its options, the module exist. Inline repository
paths and relative links must exist, and docs/README.md must list every document.

Kept fast on purpose (about 30 s on 2 cores, nearly all of it the documented training runs);
no stack needed, so it lives at the top of tests/ without a marker (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import io
import multiprocessing
import os
import re
import shlex
import shutil
import socket
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import torch

from lab.cli import build_parser, main
from lab.families import FAMILY_MODULES
from lab.repo import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell"}
TRANSCRIPT_LANGS = {"console"}
OTHER_LANGS = {"text", "toml", "promql", "json", "yaml", "python"}


@dataclass(frozen=True)
class Mapped:
    test: str  # a test file or directory, relative to the repository
    evidence: str | None  # a string the test file contains, showing it does what the command does
    why: str


# The commands no test here can run (they need the stack, or are the test suite itself),
# with the test that covers each. Keys are the command as written (whitespace collapsed).
MAPPED = {
    "make test": Mapped("tests", None, "the whole suite, this file included"),
    "make up": Mapped("tests/stack/test_compose_stack.py", '"make", "-s", "up"',
                      "runs `make up` as users do (compose on a private engine)"),
    "make down": Mapped("tests/stack/test_compose_stack.py", '"make", "-s", "down"',
                        "`make down` removes the containers, keeps the named volumes"),
    "make status": Mapped("tests/stack/test_compose_stack.py", '"make", "-s", "status"',
                          "`make status` lists Jaeger and VictoriaLogs"),
    "make up LAB_PROFILE=shared": Mapped("tests/stack/test_compose_stack.py", '"LAB_PROFILE": "shared"',
                                         "`make up` in the shared profile on compose; natively in test_shared_profile.py"),
    "make up LAB_NATIVE=1": Mapped("tests/stack/test_stack_address.py", '"LAB_NATIVE": "1"',
                                   "`make up LAB_NATIVE=1` with other ports, then a plain `lab run` lands there"),
    "make up LAB_OTLP_HTTP_PORT=14318 LAB_PROMETHEUS_PORT=19090":
        Mapped("tests/stack/test_stack_address.py", '_make("up", make_vars)',
               "`make up` with every port overridden on the make command line"),
    "scripts/stack.sh up --native": Mapped("lab/dev/stack.py", 'NATIVE / "up.sh"',
                                           "the session's native stack fixture (tests/stack/test_native_stack.py) runs "
                                           "scripts/native/up.sh, what `scripts/stack.sh up --native` runs"),
    "curl -s http://127.0.0.1:9428/select/logsql/query --data-urlencode "
    "'query=\"lab.run.id\":\"<run id>\" AND \"lab.event\":nonfinite'":
        Mapped("tests/stack/conftest.py", "/select/logsql/query",
               "tests/stack/test_backends.py reads a diverged run's nonfinite records by run id"),
    "curl -s http://127.0.0.1:16686/api/traces/<trace id>":
        Mapped("tests/stack/conftest.py", '"/api/traces/{trace_id}"',
               "tests/stack/test_backends.py reads an overfit trace through Jaeger's v1 API"),
    "curl -s http://127.0.0.1:16686/api/v3/traces/<trace id>":
        Mapped("tests/stack/conftest.py", '"/api/v3/traces/{trace_id}"',
               "tests/stack/test_backends.py reads a diverged trace through Jaeger's v3 API"),
    ".venv/bin/python -m pytest tests/stack": Mapped("tests/stack", None, "the stack tests themselves"),
    "make test-stack": Mapped("tests/stack", None, "the stack tests themselves"),
    "make check-stack-config": Mapped("tests/stack/test_config_validation.py", "promtool",
                                      "the config validation and agreement tests themselves"),
    "make test-compose": Mapped("tests/stack/test_compose_stack.py", None, "the compose test itself"),
}

# -- reading the documents ------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    doc: Path
    line: int
    text: str  # as written, whitespace collapsed
    output: tuple[str, ...] = ()  # documented output (console blocks)

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^(```+)([^\n`]*)\n(.*?)^\1[ \t]*$", re.S | re.M)


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    return [Block(doc, text[:m.start()].count("\n") + 1, m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def _collapse(s: str) -> str:
    return " ".join(s.split())


def commands(block: Block) -> list[Command]:
    """The commands of a shell or console block, with the line each is on."""
    out: list[Command] = []
    lines = block.body.splitlines()
    if block.lang in TRANSCRIPT_LANGS:
        for i, ln in enumerate(lines):
            if ln.startswith("$ "):
                rest = []
                for later in lines[i + 1:]:
                    if later.startswith("$ "):
                        break
                    rest.append(later)
                out.append(Command(block.doc, block.line + 1 + i, _collapse(ln[2:]), tuple(rest)))
        return out
    if block.lang not in SHELL_LANGS:
        return []
    for i, ln in enumerate(lines):
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        code = ln[:_comment_start(ln)].strip()
        out.append(Command(block.doc, block.line + 1 + i, _collapse(code)))
        comment = ln[_comment_start(ln):]
        for alt in re.findall(r"\bor: ([^)]+)", comment):  # `# or: make test-stack`
            out.append(Command(block.doc, block.line + 1 + i, _collapse(alt.strip().strip("`"))))
    return out


def _comment_start(line: str) -> int:
    """Where a shell comment starts (a # outside quotes after whitespace), or len(line)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return len(line)


def all_blocks() -> list[Block]:
    return [b for d in DOCS for b in blocks(d)]


def all_commands() -> list[Command]:
    return [c for b in all_blocks() for c in commands(b)]


# -- make -----------------------------------------------------------------------------------

@cache
def make_help() -> tuple[frozenset[str], frozenset[str]]:
    """The targets `make help` lists, and the scenarios it names for scenario-<name>."""
    make = shutil.which("make")
    assert make, "make is needed to check the documented make targets"
    out = subprocess.run([make, "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    targets, scenarios = set(), set()
    for ln in out.splitlines():
        m = re.match(r"^  (\S+)\s", ln)
        if not m:
            continue
        if m.group(1) == "scenario-<name>":
            scenarios.update(ln.split("known:", 1)[1].split())
        else:
            targets.add(m.group(1))
    return frozenset(targets), frozenset(scenarios)


def make_target_problem(target: str) -> str | None:
    targets, scenarios = make_help()
    if target.startswith("scenario-"):
        name = target.removeprefix("scenario-")
        return None if name in scenarios else f"no scenario {name!r} (make help knows: {', '.join(sorted(scenarios))})"
    return None if target in targets else f"no make target {target!r} in `make help`"


def make_lab_argv(argv: list[str]) -> list[list[str]]:
    """The lab commands a make command runs, from its dry run (`make -n`): nothing is executed."""
    out = subprocess.run(["make", "-n", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"make -n {shlex.join(argv)}: {out.stderr.strip()}")
    runs = []
    for ln in out.stdout.splitlines():
        try:
            words = shlex.split(ln)
        except ValueError:  # a recipe line that is not one shell command (the venv's python -c '...')
            continue
        for i in range(len(words) - 2):
            if words[i].endswith("python") and words[i + 1:i + 3] == ["-m", "lab"]:
                runs.append(words[i + 3:])
    return runs


# -- the plan: run or mapped ----------------------------------------------------------------

@dataclass
class Step:
    command: Command
    lab_argv: list[str] | None = None  # run this (fast variant); None: mapped
    mapped: Mapped | None = None


def plan(cmd: Command) -> Step:
    """How a documented command is covered; AssertionError naming the place if it is not."""
    argv = shlex.split(cmd.text)
    if argv[0] == "make":
        for t in (a for a in argv[1:] if "=" not in a):
            if problem := make_target_problem(t):
                raise AssertionError(f"{cmd.where}: `{cmd.text}`: {problem}")
    if cmd.text in MAPPED:
        return Step(cmd, mapped=MAPPED[cmd.text])
    if argv[0] == "make":
        runs = make_lab_argv(argv[1:])
        if len(runs) != 1:
            raise AssertionError(f"{cmd.where}: `{cmd.text}` runs no lab command (make -n) and is not in MAPPED of "
                                 f"{Path(__file__).name}: map it to the test that covers it")
        return Step(cmd, lab_argv=fast_variant(runs[0]))
    if argv[0] in ("lab", ".venv/bin/lab"):
        return Step(cmd, lab_argv=fast_variant(argv[1:]))
    if argv[:3] == [".venv/bin/python", "-m", "lab"]:
        return Step(cmd, lab_argv=fast_variant(argv[3:]))
    raise AssertionError(f"{cmd.where}: `{cmd.text}` is neither run by {Path(__file__).name} nor in its MAPPED "
                         "table: run it (a lab or make command) or map it to the test that covers it")


def fast_variant(argv: list[str]) -> list[str]:
    """The documented lab command, flat out (FAST in the module docstring)."""
    argv = list(argv)
    if argv[:1] == ["run"] and "--fast" not in argv:
        argv.append("--fast")
    if argv[:2] in (["triage", "start"], ["triage", "fix"]) and "--fast" not in argv:
        argv.append("--fast")
    if argv[:2] == ["triage", "start"] and "--seed" not in argv:
        argv += ["--seed", "1"]
    return argv


# -- running --------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_key(argv: list[str]) -> tuple | None:
    """What a `lab run --fast` computes, for sharing one run between documented commands that
    differ only in what --fast ignores (`--speed`) or what a pipe already gives (`--plain`).
    The command line is parsed either way, so every option is still checked; an invalid one
    gives None, and the command then runs on its own (and fails, naming its line)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return None
    if args.command != "run" or not args.fast or args.summary_json or args.record:
        return None
    return (args.name, args.seed, args.fix, tuple(args.overrides), args.telemetry, args.quiet)


Result = tuple[int, str, str]  # exit status, stdout, stderr


def run_in_process(argv: list[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def run_sequence(state_dir: str, argvs: list[list[str]]) -> list[Result]:
    """One document's stateful commands (triage, list, show), in its order, in one state dir."""
    os.environ["LAB_STATE_DIR"] = state_dir
    return [run_in_process(a) for a in argvs]


def warm_up() -> None:
    """Import once, before forking, what every run imports on first use (the family modules,
    scikit-learn's datasets, the torch._dynamo that a first optimizer pulls in), so the
    workers do not each pay for it."""
    for module in FAMILY_MODULES.values():
        importlib.import_module(module)
    importlib.import_module("sklearn.datasets")
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])


@dataclass
class DocPlan:
    steps: list[Step]  # the document's commands that run a lab command, in order
    sequence: list[list[str]]  # the argv of those that are not a `lab run --fast`


def doc_plan(doc: Path) -> DocPlan:
    """What runs for a document; a command that cannot be planned is left to
    test_every_documented_command_is_run_or_mapped, which names it."""
    steps = []
    for cmd in (c for b in blocks(doc) for c in commands(b)):
        try:
            step = plan(cmd)
        except AssertionError:
            continue
        if step.lab_argv is not None:
            steps.append(step)
    return DocPlan(steps, [st.lab_argv for st in steps if run_key(st.lab_argv) is None])


def scenario_files(doc: Path) -> dict[str, str]:
    """The scenario files a document writes (`toml` blocks opening with `# scenarios/NAME.toml`)."""
    return {m.group(1): b.body for b in blocks(doc)
            if b.lang == "toml" and (m := re.match(r"#\s*scenarios/([\w-]+\.toml)\s*\n", b.body))}


DOCS_WITH_COMMANDS = [d for d in DOCS if any(commands(b) for b in blocks(d))]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Every documented lab command run once: the `lab run --fast` commands by run_key, each
    document's other commands (a sequence in its own state dir) by document.

    Two at a time in forked workers where the platform forks (the runs are independent and the
    module already imported torch and lab), else one after the other in this process.
    No collector, no Prometheus (closed ports), a private copy of scenarios/ with the documents'
    own scenario files, a private working directory."""
    tmp = tmp_path_factory.mktemp("docs-commands")
    scenarios = tmp / "scenarios"
    shutil.copytree(ROOT / "scenarios", scenarios)
    plans = {doc: doc_plan(doc) for doc in DOCS_WITH_COMMANDS}
    for doc in plans:
        for name, body in scenario_files(doc).items():
            (scenarios / name).write_text(body)
    runs = {run_key(st.lab_argv): st.lab_argv for p in plans.values() for st in p.steps if run_key(st.lab_argv)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
        mp.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
        mp.setenv("LAB_PROMETHEUS_URL", f"http://127.0.0.1:{_closed_port()}")
        mp.setenv("LAB_SCENARIOS_DIR", str(scenarios))
        mp.setenv("LAB_STATE_DIR", str(tmp / "state"))
        mp.chdir(tmp)
        endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        jobs = {("run", k): (run_in_process, argv) for k, argv in runs.items()}
        jobs.update({("doc", doc): (run_sequence, str(tmp / f"state-{i}"), p.sequence)
                     for i, (doc, p) in enumerate(plans.items()) if p.sequence})
        if "fork" in multiprocessing.get_all_start_methods():
            warm_up()
            with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = {k: pool.submit(*job) for k, job in jobs.items()}
                done = {k: f.result(timeout=600) for k, f in futures.items()}
        else:
            done = {k: fn(*args) for k, (fn, *args) in jobs.items()}
    return {"done": done, "plans": plans, "endpoint": endpoint}


def _mask(line: str) -> str:
    """Durations vary from machine to machine: 1.6 s -> <t> s."""
    return re.sub(r"\d+(?:\.\d+)? s\b", "<t> s", line.rstrip())


def check_output(cmd: Command, out: str, err: str, endpoint: str) -> list[str]:
    """Documented output lines missing from the real output (`...` elides; a line ending in ` ...`
    is a prefix). The collector address is the one the test pointed at, so it is put back."""
    real = [_mask(ln.replace(endpoint, "http://localhost:4318")) for ln in (out + err).splitlines()]
    missing = []
    for doc_line in cmd.output:
        want = _mask(doc_line)
        if not want.strip() or want.strip() == "...":
            continue
        prefix = want[:-4] if want.endswith(" ...") else None
        if not any(r.startswith(prefix) if prefix else r == want for r in real):
            missing.append(doc_line)
    return missing


@pytest.mark.parametrize("doc", DOCS_WITH_COMMANDS, ids=lambda d: str(d.relative_to(ROOT)))
def test_documented_commands_run(doc, results):
    """Each document's commands: ran (fast variant) with the expected exit status and the
    documented output, or mapped (plan() checked the mapping)."""
    done, plan_ = results["done"], results["plans"][doc]
    sequence = iter(done.get(("doc", doc), []))
    failures = []
    for step in plan_.steps:
        key = run_key(step.lab_argv)
        code, out, err = done[("run", key)] if key else next(sequence)
        cmd = step.command
        allowed = {0, 1} if step.lab_argv[:2] == ["triage", "answer"] else {0}
        if code not in allowed:
            failures.append(f"{cmd.where}: `{cmd.text}` (ran: lab {shlex.join(step.lab_argv)}) exited {code}:\n"
                            + "\n".join((out + err).strip().splitlines()[-8:]))
        elif missing := check_output(cmd, out, err, results["endpoint"]):
            failures.append(f"{cmd.where}: `{cmd.text}`: documented output not printed:\n  " + "\n  ".join(missing))
    assert not failures, "\n\n".join(failures)


# -- checks that run nothing -----------------------------------------------------------------

def test_every_fenced_block_says_its_language():
    untagged = [f"{b.where}: tag it ({', '.join(sorted(SHELL_LANGS | TRANSCRIPT_LANGS | OTHER_LANGS))})"
                for b in all_blocks() if b.lang not in SHELL_LANGS | TRANSCRIPT_LANGS | OTHER_LANGS]
    assert not untagged, "fenced blocks without a known language (a command could hide there):\n" + "\n".join(untagged)


def test_every_documented_command_is_run_or_mapped():
    problems = []
    for cmd in all_commands():
        try:
            plan(cmd)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_the_mapped_tests_exist_and_do_what_the_command_does():
    used = {c.text for c in all_commands()}
    problems = []
    for text, m in MAPPED.items():
        path = ROOT / m.test
        if not path.exists():
            problems.append(f"`{text}`: {m.test} does not exist")
        elif m.evidence and m.evidence not in path.read_text():
            problems.append(f"`{text}`: {m.test} does not contain {m.evidence!r}")
    stale = sorted(set(MAPPED) - used)
    assert not problems and not stale, "\n".join(problems + [f"MAPPED lists `{s}`, which no document shows" for s in stale])


def test_fast_variants():
    assert fast_variant(["run", "overfit", "--seed", "3"]) == ["run", "overfit", "--seed", "3", "--fast"]
    assert fast_variant(["run", "overfit", "--fast", "--fix"]) == ["run", "overfit", "--fast", "--fix"]
    assert fast_variant(["triage", "start"]) == ["triage", "start", "--fast", "--seed", "1"]
    assert fast_variant(["triage", "start", "--seed", "7"]) == ["triage", "start", "--seed", "7", "--fast"]
    assert fast_variant(["triage", "hint"]) == ["triage", "hint"]
    assert run_key(["run", "overfit", "--seed", "2", "--speed", "2", "--fast"]) == \
        run_key(["run", "overfit", "--fast", "--plain", "--seed", "2"])
    assert run_key(["run", "overfit", "--fast"]) != run_key(["run", "overfit", "--fast", "--fix"])
    assert run_key(["triage", "start", "--fast"]) is None


def test_command_extraction():
    b = Block(ROOT / "README.md", 1, "bash", "make list   # or: .venv/bin/lab list\n# a comment\n"
                                            "make scenario-overfit ARGS=\"--seed 2 --speed 2\"  # paced\n")
    assert [c.text for c in commands(b)] == ["make list", ".venv/bin/lab list", 'make scenario-overfit ARGS="--seed 2 --speed 2"']
    t = Block(ROOT / "README.md", 1, "console", "$ lab list\nNAME ...\n...\n$ lab show x\n")
    assert [(c.text, c.output) for c in commands(t)] == [("lab list", ("NAME ...", "...")), ("lab show x", ())]
    assert commands(Block(ROOT / "README.md", 1, "text", "make up\n")) == []


# Inline code in prose: `make X`, `lab X --y`, `python -m lab.x`, repository paths.
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
HYPOTHETICAL = re.compile(r"newkind|NEWKIND|my-|<|NAME|\.\.\.|…")  # examples of files to write
IMAGE = re.compile(r"^[\w./-]+:v?\d")  # grafana/grafana:13.1.0 is an image, not a path
REPO_DIRS = ("lab/", "tests/", "docs/", "scripts/", "prometheus/", "grafana/", "results/", "scenarios/",
             "otel-collector/", "alertmanager/", "jaeger/", "mk/")


def inline_spans() -> list[tuple[str, str]]:
    spans = []
    for doc in DOCS:
        text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), doc.read_text())
        for m in INLINE.finditer(text):
            spans.append((f"{doc.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}", m.group(1).strip()))
    return spans


def _subparsers(p) -> dict:
    for a in p._actions:  # argparse keeps no public handle on its subcommands
        if a.__class__.__name__ == "_SubParsersAction":
            return a.choices
    return {}


def lab_inline_problem(words: list[str]) -> str | None:
    parser = build_parser()
    subs = _subparsers(parser)
    if not words:
        return None
    alternatives = words[0].split("|")
    if words[0] in ("--version", "--debug", "--help"):
        return None
    for name in alternatives:
        if name not in subs:
            return f"no lab command {name!r}"
    p = subs[alternatives[0]]
    rest = words[1:]
    if _subparsers(p) and rest:
        for action in rest[0].split("|"):
            if action not in ("…", "...") and action not in _subparsers(p):
                return f"no `lab {alternatives[0]}` action {action!r}"
        if "|" not in rest[0] and rest[0] in _subparsers(p):
            p = _subparsers(p)[rest[0]]
        rest = rest[1:]
    for w in rest:
        if w.startswith("--") and w.split("=")[0] not in p._option_string_actions:
            return f"`lab {words[0]}` has no option {w}"
    return None


def test_inline_commands_name_what_exists():
    problems = []
    for where, span in inline_spans():
        words = span.replace("\\|", "|").split()
        if words[:1] == ["make"]:
            for part in span.split("&&"):  # `make down && make up`
                targets = [w for w in part.split()[1:] if "=" not in w]
                for t in (targets[0].split("/") if targets else []):  # `make up/down/status/...`
                    if t not in ("...", "…") and (problem := make_target_problem(t)):
                        problems.append(f"{where}: `{span}`: {problem}")
        elif words[0] in ("lab", ".venv/bin/lab") and len(words) > 1:
            shell_op = next((i for i, w in enumerate(words) if w in (">", "|", "&&", "2>")), len(words))
            if problem := lab_inline_problem(words[1:shell_op]):
                problems.append(f"{where}: `{span}`: {problem}")
        elif span.startswith("python -m lab"):
            module = words[2]
            if importlib.util.find_spec(module) is None:
                problems.append(f"{where}: `{span}`: no module {module}")
    assert not problems, "\n".join(problems)


def _brace_expand(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [p for alt in m.group(1).split(",") for p in _brace_expand(pattern[:m.start()] + alt + pattern[m.end():])]


def test_inline_paths_and_links_exist():
    problems = []
    for where, span in inline_spans():
        path = span.split(":")[0].split(" ")[0]
        if not path.startswith(REPO_DIRS) or HYPOTHETICAL.search(path) or IMAGE.match(span):
            continue
        patterns = [re.sub(r"\*\*(?!/)", "**/*", p) for p in _brace_expand(path)]  # dir/**.yaml: any depth
        if not all(glob.glob(str(ROOT / p), recursive=True) for p in patterns):
            problems.append(f"{where}: `{span}`: no such path")
    for doc in DOCS:
        text = FENCE.sub("", doc.read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (doc.parent / target.split("#")[0]).exists():
                problems.append(f"{doc.relative_to(ROOT)}: link to {target}: no such file")
    assert not problems, "\n".join(problems)


def test_docs_index_lists_every_document():
    index = ROOT / "docs" / "README.md"
    assert index.is_file(), "docs/README.md: the index of the documentation"
    links = {(index.parent / t.split("#")[0]).resolve() for t in re.findall(r"\]\(([^)\s]+)\)", index.read_text())}
    runbooks = ROOT / "docs" / "runbooks"
    wanted = [p for p in DOCS if p != index and p.parent != runbooks] + [runbooks / "README.md"]
    wanted += sorted((ROOT / "results").glob("*.md")) + [ROOT / "docs" / "scenario.schema.json"]
    missing = [str(p.relative_to(ROOT)) for p in wanted if p.resolve() not in links]
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"
    assert index.resolve() in {(ROOT / t.split("#")[0]).resolve()
                               for t in re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())}, \
        "README.md does not link docs/README.md"
    runbook_links = set(re.findall(r"\]\((MLLab\w+\.md)\)", (runbooks / "README.md").read_text()))
    pages = {p.name for p in runbooks.glob("MLLab*.md")}
    assert pages <= runbook_links, f"docs/runbooks/README.md does not link {sorted(pages - runbook_links)}"
