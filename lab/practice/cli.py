"""`lab triage ...`: the practice-mode commands (see lab/practice/triage.py)."""

from __future__ import annotations

import argparse
import json
import time

from lab import options
from lab.practice import triage as t

EXIT_INTERRUPTED = 130  # as every lab command (lab/cli.py)


def add_parser(sub) -> None:
    p = sub.add_parser("triage", help="practise triage on a hidden scenario",
                       description="Practise triage: a hidden scenario runs live under the neutral name 'mystery'; "
                                   "diagnose it from the signals, dashboards and alerts.")
    tsub = p.add_subparsers(dest="triage_command", metavar="ACTION", required=True)
    start = tsub.add_parser("start", help="pick a hidden case and run it live (this terminal shows its signals)",
                            description="Pick a hidden case and run it. The same --seed gives everyone the same case: "
                                        "a seed picks from the lab's built-in scenarios only, whatever other "
                                        "scenario files you have.")
    start.add_argument("--seed", type=options.seed,
                       help=f"case seed to share with a class, {options.SEED_MIN} to {options.SEED_MAX} (default: random)")
    own = start.add_mutually_exclusive_group()
    own.add_argument("--custom", dest="custom", action="store_const", const=True,
                     help="draw from your own scenarios that declare a [story] diagnosis too, even with --seed")
    own.add_argument("--no-custom", dest="custom", action="store_const", const=False,
                     help="draw from the built-in scenarios only (default: only with --seed)")
    conf = start.add_mutually_exclusive_group()
    conf.add_argument("--confounder", dest="confounder", nargs="?", const=True, choices=t.CONFOUNDER_KINDS,
                      metavar="KIND", help="always add a telemetry-pipeline fault: " + ", ".join(t.CONFOUNDER_KINDS)
                      + " (default: the seed picks; the collector crash and the Prometheus restart need a native stack "
                      "you started, else it is an export outage)")
    conf.add_argument("--no-confounder", dest="confounder", action="store_const", const=False,
                      help="never add one (default: about one case in three)")
    _run_options(start)
    tsub.add_parser("hint", help="show the next hint (each one costs points)")
    ans = tsub.add_parser("answer", help="submit a diagnosis (retry allowed)",
                          description="Name what is wrong: one diagnosis, or two if the pipeline broke too "
                                      "(e.g. `lab triage answer overfitting pipeline`); `healthy` if nothing is.")
    ans.add_argument("diagnosis", nargs="+", help="one or more of the names `lab triage diagnoses` lists")
    tsub.add_parser("diagnoses", help="list the diagnoses an answer can name")
    reveal = tsub.add_parser("reveal", help="show the truth: scenario, first signal, alerts fired, runbooks")
    _json_option(reveal)
    fix = tsub.add_parser("fix", help="run the remedy under the same neutral name (variant fix), for side by side")
    _run_options(fix)
    _json_option(tsub.add_parser("status", help="show the open case: time running, attempts, hints used"))
    _json_option(tsub.add_parser("scores", help="summarise the history of cases"))


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true", help="run flat out (tests); default is paced for people")
    p.add_argument("--speed", type=options.speed, default=1.0,
                   help=f"pace multiplier, {options.SPEED_MIN:g} to {options.SPEED_MAX:g} (default 1)")
    p.add_argument("--telemetry", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--plain", action="store_true", help="line-by-line output even on a terminal")


def _confounder_text(kind: str, began: float, ended: float | None) -> str:
    until = "the end of the run" if ended is None else f"{ended} s"
    return {"collector-crash": f"the collector crashed {began} s after the start and was back at {until}",
            "prometheus-restart": f"Prometheus was down from {began} s after the start until {until}",
            }.get(kind, f"a telemetry outage from {began} s after the start until {until}: the run could not export")


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _start(args) -> int:
    case = t.pick_case(args.seed, confounder=args.confounder, custom=args.custom)
    t.open_case(case)
    drawn = "" if case.pool == t.BUILT_IN else ", drawn with your own scenarios: --custom repeats it"
    print(f"Case {case.case_id} (seed {case.seed}{drawn}) is running as lab_scenario=\"{t.MYSTERY}\", "
          f"lab_variant=\"{t.CASE_VARIANT}\".\n"
          "Watch the terminal below and the dashboards (Training health / Production drift; pick scenario "
          f"'{t.MYSTERY}'). In another terminal: `lab triage hint`, `lab triage answer DIAGNOSIS`, "
          "`lab triage reveal`. Ctrl-C stops the run; the case stays open.\n")
    try:
        outcome = t.run_case(case, fast=args.fast, speed=args.speed, telemetry=args.telemetry,
                             live=False if args.plain else None)
        interrupted = outcome.result.stopped == "interrupted"
    except KeyboardInterrupt:
        interrupted = True
    if interrupted:
        print("\nRun stopped; the case is still open. Diagnose with `lab triage answer DIAGNOSIS`.")
        return EXIT_INTERRUPTED
    print("\nRun over. Diagnose with `lab triage answer DIAGNOSIS` (list: `lab triage diagnoses`).")
    return 0


def _diagnoses(args) -> int:
    print("\n".join(t.diagnoses()))
    return 0


def _scores(args) -> int:
    rows = t.history()
    try:
        cur = t.load_current()
        if not any(r["case_id"] == cur.case_id and r["started_at"] == cur.started_at for r in rows):
            # an open case's diagnosis is the answer: not shown until it is solved or revealed
            rows.append({**t.asdict(cur), "score": cur.score, "diagnosis": cur.diagnosis if cur.closed else None})
    except t.TriageError:
        pass
    if args.json:
        print(json.dumps({"cases": [_score_row(r) for r in rows], "summary": t.summarise_scores(rows)}, indent=2))
        return 0
    if not rows:
        print("No cases yet: start one with `lab triage start`.")
        return 0
    print(f"{'case':<7} {'started':<17} {'diagnosis':<16} {'solved':<7} {'time':>8} {'tries':>5} {'hints':>5} {'score':>5}")
    for r in rows:
        solved = r.get("solved_at") is not None
        took = (r["solved_at"] - r["started_at"]) if solved else None
        print(f"{r['case_id']:<7} {time.strftime('%Y-%m-%d %H:%M', time.localtime(r['started_at'])):<17} "
              f"{r['diagnosis'] or '(open)':<16} {'yes' if solved else 'no':<7} {_fmt_s(took):>8} {len(r['attempts']):>5} "
              f"{r['hints_used']:>5} {r.get('score', 0):>5}")
    s = t.summarise_scores(rows)
    print(f"\n{s['solved']}/{s['cases']} solved · median time to a correct diagnosis {_fmt_s(s['median_time_s'])} · "
          f"mean score {s['mean_score']} · hints per case {s['hints_per_case']}")
    print("by diagnosis: " + ", ".join(f"{d} {v}" for d, v in s["by_diagnosis"].items()))
    return 0


def _score_row(r: dict) -> dict:
    solved = r.get("solved_at") is not None
    return {"case_id": r["case_id"], "started_at": r["started_at"], "diagnosis": r["diagnosis"], "solved": solved,
            "time_to_solve_s": round(r["solved_at"] - r["started_at"], 1) if solved else None,
            "answers": len(r["attempts"]), "hints_used": r["hints_used"], "score": r.get("score", 0)}


def _status(case: t.Case, args) -> int:
    # The case seed, never the run's; progress as a share of the run, never steps or windows.
    state = "solved" if case.solved_at else "revealed" if case.revealed_at else "open"
    if args.json:
        print(json.dumps({"case_id": case.case_id, "seed": case.seed, "pool": case.pool, "state": state,
                          "started_at": case.started_at, "running_s": round(time.time() - case.started_at, 1),
                          "progress_pct": case.progress, "run_outcome": case.run_outcome,
                          "answers": len(case.attempts), "hints_used": case.hints_used, "score": case.score}, indent=2))
        return 0
    done = "" if case.progress is None else f" at {case.progress}% of the run"
    print(f"Case {case.case_id} (seed {case.seed}): {state}; started {_fmt_s(time.time() - case.started_at)} ago; "
          f"run {case.run_outcome or 'still running (or stopped)'}{done}; {len(case.attempts)} answers, "
          f"{case.hints_used} hints; score {case.score}.")
    return 0


def _hint(case: t.Case, args) -> int:
    n, total, text = t.next_hint(case)
    print(f"Hint {n}/{total} (-{t.HINT_PENALTY} points each): {text}")
    return 0


def _answer(case: t.Case, args) -> int:
    r = t.answer(case, args.diagnosis)
    if not r["counted"]:
        print(f"This case is already solved ({_fmt_s(r['elapsed_s'])} after the start, {len(case.attempts)} answer(s), "
              f"score {r['score']}): answers now do not count. See the whole story with `lab triage reveal`.")
        return 0 if r["correct"] else 1
    if r["correct"]:
        print(f"Correct: {' + '.join(r['right'])}, {_fmt_s(r['elapsed_s'])} after the start, "
              f"{len(case.attempts)} answer(s), {case.hints_used} hint(s): score {r['score']}.")
        print("See the whole story with `lab triage reveal`; watch the remedy beside the broken run with "
              f"`lab triage fix` (or `lab run {case.scenario} --fix`).")
        return 0
    msg = "Not quite."
    if r["right"]:
        msg += f" {', '.join(r['right'])}: yes."
    if r["wrong"]:
        msg += f" {', '.join(r['wrong'])}: no."
    if r["missing"]:
        msg += " Something else is going on too." if r["right"] else ""
    print(msg + " Try again, or `lab triage hint`.")
    return 1


def _reveal(case: t.Case, args) -> int:
    first_time = case.revealed_at is None
    r = t.reveal(case)
    fired = t.fired_alerts(case, t.prometheus_url())
    if first_time:
        t.archive(case)
    if args.json:
        print(json.dumps({**r, "alerts_fired": fired, "prometheus_url": t.prometheus_url()}, indent=2))
        return 0
    print(f"Case {r['case']}: scenario '{r['scenario']}': {r['title']}")
    print(f"Answer: {' + '.join(r['truth'])}" + (f" ({_confounder_text(r['confounder'], *r['outage_s'])})"
                                                 if r["confounder"] else ""))
    print(f"\nRoot cause: {r['root_cause']}\n\nWhat the signals show: {r['what_the_signals_show']}")
    if r["first_signals"]:
        first = sorted(r["first_signals"].items(), key=lambda kv: kv[1]["at"])
        print("\nFirst signals (the lab's failure signatures):")
        for sig, v in first:
            print(f"  {sig:<22} {v['unit']} {v['at']}" + (f", {v['elapsed_s']} s after the run started"
                                                           if v.get("elapsed_s") is not None else ""))
    elif r["run_outcome"] is None:
        print("\nThe run did not finish, so its first signals were not recorded.")
    if fired is None:
        print(f"\nAlerts: Prometheus at {t.prometheus_url()} did not answer (is the stack up? `make up`).")
    else:
        print("\nAlerts that fired (seconds after the start): " +
              (", ".join(f"{a} {s:.0f}" for a, s in sorted(fired.items(), key=lambda kv: kv[1])) or "none"))
    print(f"Alerts this scenario is expected to fire: {', '.join(r['expected_alerts']) or 'none'}")
    for alert, url in r["runbooks"].items():
        print(f"  runbook {alert}: {url}")
    print(f"\nWhat to do: {r['what_to_do']}")
    if r["fix"]:
        print(f"The fix: {r['fix']}  Run it beside this one: `lab triage fix`.")
    return 0


def _fix(case: t.Case, args) -> int:
    if not case.closed:  # first: "nothing to fix" would give a healthy case away
        print("Diagnose first (`lab triage answer ...`), or `lab triage reveal`.")
        return 1
    if not t.load_scenario(case.scenario).has_fix:
        print("Nothing to fix: this case had no model fault." + (" The pipeline fault was the problem."
                                                                 if case.outage_began_at else ""))
        return 0
    outcome = t.run_case(case, fix=True, fast=args.fast, speed=args.speed, telemetry=args.telemetry,
                         live=False if args.plain else None)
    return EXIT_INTERRUPTED if outcome.result.stopped == "interrupted" else 0


# Commands that need no open case, and those that act on the open one.
WITHOUT_CASE = {"start": _start, "diagnoses": _diagnoses, "scores": _scores}
ON_CASE = {"status": _status, "hint": _hint, "answer": _answer, "reveal": _reveal, "fix": _fix}


def main(args) -> int:
    cmd = args.triage_command
    if cmd in WITHOUT_CASE:
        return WITHOUT_CASE[cmd](args)
    return ON_CASE[cmd](t.load_current(), args)
