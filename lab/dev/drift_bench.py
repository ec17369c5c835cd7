"""Drift monitor measurements (part of `make bench`): false alarms, detection, speed, and a library comparison.

    python -m lab.dev.drift_bench --out results [--windows 200] [--skip-library]

Data: the inference scenarios' world (lab/serving/model.py make_world: 8 standardised features,
reference 10,000 samples). Each window draws fresh stream samples; a shifted window adds
delta reference standard deviations to income, debt_ratio and credit_utilisation (as the
`drift` scenario does). For each window size and shift it reports the share of windows each
decision rule flags: on delta = 0 that is the false-alarm rate, otherwise the detection rate.

Library comparison: Evidently's own stattests run on the same windows in a throwaway virtual
environment (~/.cache/ml-obs-lab/bench-evidently, version LAB_BENCH_EVIDENTLY_VERSION in .env),
never a runtime dependency of the lab: their decisions beside the lab's, and their time per
window beside DriftMonitor.check's (speed_vs_library). See docs/drift.md for the reading.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lab.repo import cache_dir, read_dotenv
from lab.serving.drift import DriftMonitor
from lab.serving.model import make_world
from lab.specs.serving import FEATURES, ServeDataSpec
from lab.stats import adjust
from lab.thresholds import JS_THRESHOLD, KS_ALPHA, PSI_MAJOR, PSI_MODERATE

WINDOW_SIZES = (250, 500, 1000, 2000)
SHIFTS = (0.0, 0.25, 0.5, 1.0)
SHIFTED = ("income", "debt_ratio", "credit_utilisation")
PSI_LOW, PSI_HIGH = f"psi_{PSI_MODERATE:g}", f"psi_{PSI_MAJOR:g}"
RULES = ("ks_uncorrected", "ks_bonferroni", "ks_bh", PSI_LOW, PSI_HIGH, "js", f"ks_bonferroni+{PSI_LOW}")


def decisions(report) -> dict[str, bool]:
    p = np.array([f.ks_pvalue for f in report.features])
    psi = np.array([f.psi for f in report.features])
    js = np.array([f.js for f in report.features])
    bonf = adjust(p, "bonferroni") < KS_ALPHA
    return {
        "ks_uncorrected": bool((p < KS_ALPHA).any()),
        "ks_bonferroni": bool(bonf.any()),
        "ks_bh": bool((adjust(p, "benjamini-hochberg") < KS_ALPHA).any()),
        PSI_LOW: bool((psi > PSI_MODERATE).any()),
        PSI_HIGH: bool((psi > PSI_MAJOR).any()),
        "js": bool((js > JS_THRESHOLD).any()),
        f"ks_bonferroni+{PSI_LOW}": bool((bonf & (psi > PSI_MODERATE)).any()),
    }


def _windows(pool: np.ndarray, n: int, count: int, delta: float, rng) -> list[np.ndarray]:
    out = []
    idx = [FEATURES.index(f) for f in SHIFTED]
    for _ in range(count):
        w = pool[rng.choice(len(pool), n, replace=False)].copy()
        w[:, idx] += delta
        out.append(w)
    return out


def rates(windows_per_cell: int, seed: int = 0) -> tuple[dict, dict, dict]:
    """Flag rates per window size, shift and rule; null JS/PSI quantiles; the windows themselves (for the library)."""
    world = make_world(ServeDataSpec(), 100_000, seed)
    monitor = DriftMonitor({f: world.x_ref[:, i] for i, f in enumerate(FEATURES)})
    rng = np.random.default_rng(seed + 1)
    out: dict = {}
    null: dict = {}
    kept: dict = {}
    for n in WINDOW_SIZES:
        out[n] = {}
        for delta in SHIFTS:
            ws = _windows(world.x_stream, n, windows_per_cell, delta, rng)
            reports = [monitor.check({f: w[:, i] for i, f in enumerate(FEATURES)}) for w in ws]
            flags = [decisions(r) for r in reports]
            out[n][delta] = {rule: sum(f[rule] for f in flags) / len(flags) for rule in RULES}
            kept[(n, delta)] = (ws, reports)
            if delta == 0.0:
                max_js = np.array([r.max_js for r in reports])
                max_psi = np.array([r.max_psi for r in reports])
                per_feature_ks = np.mean([f.ks_pvalue < KS_ALPHA for r in reports for f in r.features])
                null[n] = {"max_js_p50": float(np.median(max_js)), "max_js_p99": float(np.quantile(max_js, 0.99)),
                           "max_js_max": float(max_js.max()), "max_psi_p50": float(np.median(max_psi)),
                           "max_psi_p99": float(np.quantile(max_psi, 0.99)), "max_psi_max": float(max_psi.max()),
                           "per_feature_ks_rate": float(per_feature_ks)}
    return out, null, {"reference": world.x_ref, "kept": kept}


def speed(rounds: int = 30) -> dict:
    """Feature-values judged per second by DriftMonitor.check (all statistics), reference 10,000 per feature."""
    rng = np.random.default_rng(0)
    res = {}
    for n_features, n in ((8, 500), (8, 1000), (8, 5000), (50, 1000)):
        names = [f"f{i}" for i in range(n_features)]
        monitor = DriftMonitor({f: rng.normal(size=10_000) for f in names})
        window = {f: rng.normal(0.1, 1, size=n) for f in names}
        monitor.check(window)
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            monitor.check(window)
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        res[f"{n_features}x{n}"] = {"features": n_features, "window": n, "ms_per_window": round(med * 1e3, 3),
                                    "feature_values_per_s": round(n * n_features / med)}
    return res


# -- the library comparison ----------------------------------------------------------------

_EVIDENTLY_SCRIPT = r'''
import json, sys, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
from evidently.legacy.calculations.stattests import ks_stat_test, psi_stat_test, get_stattest
from evidently.legacy.core import ColumnType
num = ColumnType.Numerical
ALPHA = float(sys.argv[2])
data = np.load(sys.argv[1])
ref, windows, names = data["reference"], data["windows"], list(data["names"])
out = []
for w in windows:
    row = {"ks": [], "ks_p": [], "psi": [], "default": [], "default_name": []}
    for i, f in enumerate(names):
        r, c = pd.Series(ref[:, i]), pd.Series(w[:, i])
        ks = ks_stat_test(r, c, num, ALPHA)
        psi = psi_stat_test(r, c, num, 0.1)
        st = get_stattest(r, c, num, None)  # Evidently's automatic choice for a numerical column
        d = st(r, c, num, None)
        row["ks"].append(bool(ks.drifted)); row["ks_p"].append(float(ks.drift_score))
        row["psi"].append(float(psi.drift_score))
        row["default"].append(bool(d.drifted)); row["default_name"].append(st.name)
    out.append(row)
json.dump(out, sys.stdout)
'''


# The same four statistics as DriftMonitor.check, each Evidently's own stattest, per feature.
_EVIDENTLY_SPEED_SCRIPT = r'''
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
from evidently.legacy.calculations.stattests import (jensenshannon_stat_test, kl_div_stat_test, ks_stat_test,
                                                      psi_stat_test)
from evidently.legacy.core import ColumnType
num = ColumnType.Numerical
data = np.load(sys.argv[1])
refs = [pd.Series(col) for col in data["reference"].T]
times = []
for w in data["windows"]:
    t = time.perf_counter()
    for r, col in zip(refs, w.T):
        c = pd.Series(col)
        for test in (ks_stat_test, psi_stat_test, kl_div_stat_test, jensenshannon_stat_test):
            test(r, c, num, None)
    times.append(time.perf_counter() - t)
json.dump(times, sys.stdout)
'''


def speed_vs_library(rounds: int = 10, n_features: int = 50, n: int = 1000) -> dict:
    """Seconds per window, the lab's DriftMonitor.check against Evidently's four stattests, same windows."""
    py, note = _evidently_python()
    if py is None:
        return {"library": note, "available": False}
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(10_000, n_features))
    windows = rng.normal(0.1, 1, size=(rounds, n, n_features))
    names = [f"f{i}" for i in range(n_features)]
    monitor = DriftMonitor({f: reference[:, i] for i, f in enumerate(names)})
    lab_times = []
    for w in windows:
        t = time.perf_counter()
        monitor.check({f: w[:, i] for i, f in enumerate(names)})
        lab_times.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.npz"
        np.savez(path, reference=reference, windows=windows)
        proc = subprocess.run([str(py), "-c", _EVIDENTLY_SPEED_SCRIPT, str(path)], capture_output=True, text=True,
                              timeout=1800)
    if proc.returncode != 0:
        return {"library": note, "available": False, "error": proc.stderr[-500:]}
    ev_times = json.loads(proc.stdout)
    lab_med, ev_med = float(np.median(lab_times)), float(np.median(ev_times))
    return {"library": note, "available": True, "features": n_features, "window": n, "rounds": rounds,
            "lab_ms": [round(1e3 * min(lab_times), 3), round(1e3 * lab_med, 3), round(1e3 * max(lab_times), 3)],
            "library_ms": [round(1e3 * min(ev_times), 3), round(1e3 * ev_med, 3), round(1e3 * max(ev_times), 3)],
            "lab_values_per_s": round(n * n_features / lab_med), "library_values_per_s": round(n * n_features / ev_med),
            "ratio": round(ev_med / lab_med, 1)}


def _evidently_python() -> tuple[Path | None, str]:
    """A throwaway venv with the pinned Evidently (created once); (python, note)."""
    env = read_dotenv()
    version = env.get("LAB_BENCH_EVIDENTLY_VERSION", "").strip()
    pandas = env.get("LAB_BENCH_EVIDENTLY_PANDAS_VERSION", "").strip()
    venv = cache_dir() / f"bench-evidently-{version}"
    py = venv / "bin" / "python"
    if py.exists():
        return py, f"evidently {version}"
    uv = Path(sys.executable).parent / "uv"
    try:
        subprocess.run([str(uv), "venv", "-q", str(venv), "--python", sys.executable], check=True, capture_output=True, timeout=300)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(py), f"evidently=={version}", f"pandas=={pandas}"], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"evidently {version} could not be installed: {str(exc)[:200]}"
    return py, f"evidently {version}"


def compare_library(sample: dict, per_cell: int) -> dict:
    py, note = _evidently_python()
    if py is None:
        return {"library": note, "available": False}
    res: dict = {"library": note, "available": True, "cells": {}}
    for (n, delta), (ws, reports) in sample["kept"].items():
        if n not in (500, 1000):
            continue
        ws, reports = ws[:per_cell], reports[:per_cell]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "w.npz"
            np.savez(path, reference=sample["reference"], windows=np.stack(ws), names=np.array(FEATURES))
            proc = subprocess.run([str(py), "-c", _EVIDENTLY_SCRIPT, str(path), str(KS_ALPHA)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            return {"library": note, "available": False, "error": proc.stderr[-500:]}
        ev = json.loads(proc.stdout)
        ks_agree = psi_diff = 0.0
        cells = 0
        lab_ds, ev_ds, ev_default_ds, ev_share = 0, 0, 0, 0
        for r, e in zip(reports, ev):
            ours = [f.ks_pvalue < KS_ALPHA for f in r.features]
            ks_agree += np.mean([a == b for a, b in zip(ours, e["ks"])])
            psi_diff += np.mean([abs(f.psi - p) for f, p in zip(r.features, e["psi"])])
            cells += 1
            lab_ds += r.drifted  # any feature, KS Bonferroni
            ev_ds += any(p < KS_ALPHA / len(FEATURES) for p in e["ks_p"])  # Evidently's KS p-values, our correction
            ev_default_ds += sum(e["default"]) / len(FEATURES) >= 0.5  # Evidently's default dataset rule (drift_share 0.5)
            ev_share += any(e["default"])
        res["cells"][f"{n}/{delta}"] = {
            "windows": cells, "ks_decision_agreement": round(ks_agree / cells, 4),
            "mean_abs_psi_difference": round(psi_diff / cells, 4),
            "lab_dataset_drift_rate": round(lab_ds / cells, 3),
            "evidently_ks_bonferroni_rate": round(ev_ds / cells, 3),
            "evidently_default_dataset_drift_rate": round(ev_default_ds / cells, 3),
            "evidently_default_any_column_rate": round(ev_share / cells, 3),
            "evidently_default_test": ev[0]["default_name"][0],
        }
    return res


def render(res: dict) -> str:
    lines = [f"# Drift monitor measurements ({res['date']})", "",
             f"Produced by `make bench` (`python -m lab.dev.drift_bench`); {res['windows_per_cell']} windows per cell, "
             f"reference 10,000 samples of the inference scenarios' 8 features, shifts on 3 of them "
             f"({', '.join(SHIFTED)}); Python {res['python']}; took {res['seconds']} s.", "",
             "## Share of windows flagged (delta = 0: false-alarm rate; otherwise detection rate)", "",
             f"A rule flags a window when any feature meets it. KS rules use the raw or adjusted p-value < {KS_ALPHA}; "
             f"JS uses distance > {JS_THRESHOLD}.", ""]
    head = "| window | shift (SD) | " + " | ".join(RULES) + " |"
    lines += [head, "|" + "---|" * (len(RULES) + 2)]
    for n, by_delta in res["rates"].items():
        for delta, r in by_delta.items():
            lines.append(f"| {n} | {delta} | " + " | ".join(f"{r[k]:.3f}" for k in RULES) + " |")
    lines += ["", "## Null distribution (healthy windows)", "",
              f"| window | per-feature KS p<{KS_ALPHA} | max-over-features JS median / p99 / max | max PSI median / p99 / max |",
              "|---|---|---|---|"]
    for n, q in res["null"].items():
        lines.append(f"| {n} | {q['per_feature_ks_rate']:.3f} | {q['max_js_p50']:.3f} / {q['max_js_p99']:.3f} / {q['max_js_max']:.3f} "
                     f"| {q['max_psi_p50']:.3f} / {q['max_psi_p99']:.3f} / {q['max_psi_max']:.3f} |")
    lines += ["", "## Speed (DriftMonitor.check: PSI, KS, KL, JS on every feature; reference 10,000 per feature)", "",
              "| features x window | ms per window | feature-values per second |", "|---|---|---|"]
    for k, v in res["speed"].items():
        lines.append(f"| {k} | {v['ms_per_window']} | {v['feature_values_per_s']:,} |")
    vs = res.get("speed_vs_library")
    if vs:
        lines += ["", f"## Speed side by side with {vs['library']} (same windows, one process each, in turn)", ""]
        if not vs.get("available"):
            lines.append(f"Not available: {vs.get('error', vs['library'])}")
        else:
            lines += [f"{vs['features']} features x window {vs['window']}, reference 10,000 per feature, {vs['rounds']} "
                      "windows; both compute KS (statistic and p-value), PSI, KL and Jensen-Shannon on every feature "
                      "(Evidently: its own stattests, one call each). Milliseconds per window, median (min-max).", "",
                      "| | ms per window | feature-values per second |", "|---|---|---|",
                      f"| lab DriftMonitor.check | {vs['lab_ms'][1]} ({vs['lab_ms'][0]}-{vs['lab_ms'][2]}) "
                      f"| {vs['lab_values_per_s']:,} |",
                      f"| {vs['library']} | {vs['library_ms'][1]} ({vs['library_ms'][0]}-{vs['library_ms'][2]}) "
                      f"| {vs['library_values_per_s']:,} |", "",
                      f"Evidently takes **{vs['ratio']}x** the lab's time per window."]
    lib = res.get("library")
    if lib:
        lines += ["", f"## Comparison with {lib['library']} on the same windows", ""]
        if not lib.get("available"):
            lines.append(f"Not available: {lib.get('error', lib['library'])}")
        else:
            lines += [f"| window/shift | KS decision agreement (per feature, p<{KS_ALPHA}) | mean abs PSI difference | lab: any feature (KS Bonferroni) "
                      "| Evidently KS p-values, Bonferroni | Evidently default: dataset drift (share >= 0.5) | Evidently default: any column | Evidently default test |",
                      "|---|---|---|---|---|---|---|---|"]
            for k, c in lib["cells"].items():
                lines.append(f"| {k} | {c['ks_decision_agreement']:.3f} | {c['mean_abs_psi_difference']:.4f} | {c['lab_dataset_drift_rate']:.3f} "
                             f"| {c['evidently_ks_bonferroni_rate']:.3f} | {c['evidently_default_dataset_drift_rate']:.3f} "
                             f"| {c['evidently_default_any_column_rate']:.3f} | {c['evidently_default_test']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.drift_bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--windows", type=int, default=200, help="windows per (window size, shift) cell")
    p.add_argument("--library-windows", type=int, default=50, help="windows per cell for the library comparison")
    p.add_argument("--skip-library", action="store_true")
    args = p.parse_args(argv)
    t0 = time.time()
    print("drift monitor: flag rates per window size and shift ...", flush=True)
    r, null, sample = rates(args.windows)
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(), "windows_per_cell": args.windows,
           "rates": {n: {str(d): v for d, v in by.items()} for n, by in r.items()}, "null": null}
    print("drift monitor: speed ...", flush=True)
    res["speed"] = speed()
    if not args.skip_library:
        print("drift monitor: library comparison (throwaway venv) ...", flush=True)
        res["library"] = compare_library(sample, args.library_windows)
        print("drift monitor: speed side by side with the library ...", flush=True)
        res["speed_vs_library"] = speed_vs_library()
    res["seconds"] = round(time.time() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    (args.out / "drift.md").write_text(render(res))
    print(render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
