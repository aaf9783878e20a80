"""Whole-process benchmark: ``dlr analyze`` against pROC doing the equivalent work.

Generates a seeded predictions CSV (contract section 4: ``patient_id, cohort, model, y_true,
y_score, scanner``; one row per patient per model) and times, as whole processes, on the same
file and in the same run, alternating a, b, a, b, ...:

  (a) .venv/bin/dlr analyze FILE --dev-cohort training --bootstrap B --seed 1 --out benchmarks/out/analyze
  (b) Rscript benchmarks/proc_bench.R FILE B

(b) does pROC's equivalent of (a)'s statistics: DeLong CIs, stratified bootstrap CIs with B
resamples, Youden thresholds and paired DeLong tests, for every model and cohort. (a) does
more than that by default (calibration, decision curves, NRI/IDI, tables and figures), so the
comparison is of the honest default command; ``--no-figures`` times (a) without figures.

Wall time is measured with ``time.perf_counter`` around ``subprocess.run``: it includes
interpreter start-up, imports and file I/O of each process.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_analyze.py                 # 2,000 patients, B = 2000, 3 repeats
    .venv/bin/python benchmarks/bench_analyze.py --repeat 5 --no-figures
    .venv/bin/python benchmarks/bench_analyze.py --survival      # the cost of --time/--event

``--survival`` adds a time to recurrence and an event to the generated file (``rfs_months``,
``recurrence``; see :func:`add_survival`) and times, alternating, (a) against
(c) the same command with ``--time rfs_months --event recurrence`` (contract 5.1: survival.csv,
km_curve.csv and, with figures, one KM figure per model and cohort) instead of pROC.

Alternative: the two commands this script prints can be timed with an external paired timer
instead (e.g. ``hyperfine --runs 3 'CMD_A' 'CMD_B'``, or ``/usr/bin/time -v`` for peak memory);
the script itself needs only Python with numpy and pandas.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
#: the pROC side: a verbatim copy of the reference set's proc_bench.R (origin: tests/data/README.md)
#: (sha256 15ec3d3a85ae8d42b75b1b1ef627c0a080981ae3a2cd570222a965c089066a2e)
DEFAULT_PROC_SCRIPT = REPO / "benchmarks" / "proc_bench.R"

#: model -> target AUC (binormal, equal variance); CR's scores are rounded to 2 decimals (ties)
MODELS = {"CR": 0.70, "RCR": 0.80, "DLRCR": 0.90}
ROUNDED_MODEL = "CR"


def make_predictions(n_patients: int, seed: int = 20261127, prevalence: float = 0.4) -> pd.DataFrame:
    """Seeded predictions table in the contract's long format (one row per patient per model).

    Cohort ``training`` holds the first 70 % of patients (1,400 of 2,000), ``validation`` the
    rest. For a model with target AUC ``a`` the latent score is ``N(0, 1) + d * y`` with
    ``d = sqrt(2) * Phi^-1(a)`` (so the population AUC is ``a``), mapped into (0, 1) by the
    logistic function. ``CR``'s scores are rounded to 2 decimals (many ties) and kept inside
    [0.01, 0.99].
    """
    rng = np.random.default_rng(seed)
    n_train = round(0.7 * n_patients)
    ids = np.array([f"P{i:07d}" for i in range(1, n_patients + 1)])
    cohort = np.where(np.arange(n_patients) < n_train, "training", "validation")
    y = (rng.random(n_patients) < prevalence).astype(int)
    scanner = rng.choice(np.array(["1.5T", "3.0T"]), size=n_patients)
    frames = []
    for model, auc in MODELS.items():
        d = np.sqrt(2.0) * statistics.NormalDist().inv_cdf(auc)
        latent = rng.standard_normal(n_patients) + d * y - d / 2
        score = 1.0 / (1.0 + np.exp(-latent))
        if model == ROUNDED_MODEL:
            score = np.clip(np.round(score, 2), 0.01, 0.99)
        else:
            score = np.clip(score, 1e-6, 1 - 1e-6)
        frames.append(pd.DataFrame({"patient_id": ids, "cohort": cohort, "model": model,
                                    "y_true": y, "y_score": score, "scanner": scanner}))
    return pd.concat(frames, ignore_index=True)


def add_survival(frame: pd.DataFrame, seed: int = 20261128) -> pd.DataFrame:
    """The predictions with a seeded time to recurrence (months) and event per patient.

    Recurrence times are exponential with mean 14 months for ``y_true`` = 1 and 90 months
    otherwise, censored by a uniform follow-up of 6 to 60 months: ``rfs_months`` is the smaller,
    ``recurrence`` whether the recurrence came first.
    """
    rng = np.random.default_rng(seed)
    patients = frame.drop_duplicates("patient_id")[["patient_id", "y_true"]]
    recurrence = rng.exponential(np.where(patients["y_true"] == 1, 14.0, 90.0))
    follow_up = rng.uniform(6.0, 60.0, len(patients))
    extra = pd.DataFrame({"patient_id": patients["patient_id"], "rfs_months": np.minimum(recurrence, follow_up),
                          "recurrence": (recurrence <= follow_up).astype(int)})
    return frame.merge(extra, on="patient_id", how="left")


def _version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else f"unavailable (exit {p.returncode})"


def machine_info(dlr_python: Path) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    proc_version = _version(["Rscript", "-e", 'cat(as.character(packageVersion("pROC")))'])
    return [
        f"date (UTC)     : {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"platform       : {platform.platform()}",
        f"processor      : {platform.processor() or platform.machine()}",
        f"CPU count      : {os.cpu_count()} (usable by this process: {usable})",
        f"python (bench) : {sys.version.split()[0]} ({sys.executable})",
        f"python (dlr)   : {_version([str(dlr_python), '--version'])} ({dlr_python})",
        f"numpy/pandas   : {np.__version__} / {pd.__version__}",
        f"R              : {_version(['Rscript', '--version'])}",
        f"pROC           : {proc_version}",
    ]


def run_timed(label: str, cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        print(f"\nFAILED: {label} exited {p.returncode}: {' '.join(cmd)}", file=sys.stderr)
        print("--- stderr ---", file=sys.stderr)
        print(p.stderr, file=sys.stderr)
        if p.stdout.strip():
            print("--- stdout ---", file=sys.stderr)
            print(p.stdout, file=sys.stderr)
        sys.exit(p.returncode or 1)
    return wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (default 3), alternating a, b")
    ap.add_argument("--n-patients", type=int, default=2000, help="patients (default 2000; 70%% training)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for both tools (default 2000)")
    ap.add_argument("--no-figures", action="store_true", help="pass --no-figures to dlr analyze")
    ap.add_argument("--seed", type=int, default=20261127, help="seed of the generated data (default 20261127)")
    ap.add_argument("--survival", action="store_true",
                    help="time dlr analyze with --time/--event against without them (instead of pROC)")
    ap.add_argument("--proc-script", type=Path, default=DEFAULT_PROC_SCRIPT,
                    help="pROC reference script (default benchmarks/proc_bench.R)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"bench_predictions_{args.n_patients}{'_survival' if args.survival else ''}.csv"
    frame = make_predictions(args.n_patients, seed=args.seed)
    if args.survival:
        frame = add_survival(frame)
    frame.to_csv(data, index=False)
    n_train = int((frame.drop_duplicates("patient_id")["cohort"] == "training").sum())
    prev = frame.drop_duplicates("patient_id")["y_true"].mean()

    dlr = REPO / ".venv" / "bin" / "dlr"
    dlr_python = REPO / ".venv" / "bin" / "python"
    cmd_a = [str(dlr), "analyze", str(data), "--dev-cohort", "training", "--bootstrap", str(args.bootstrap),
             "--seed", "1", "--out", str(OUT / "analyze")]
    if args.no_figures:
        cmd_a.append("--no-figures")
    cmd_b = ["Rscript", str(args.proc_script), str(data), str(args.bootstrap)]
    if args.survival:
        return _survival_overhead(args, data, cmd_a, dlr_python)

    print("== bench_analyze: dlr analyze vs pROC, whole processes ==")
    for line in machine_info(dlr_python):
        print(line)
    print(f"data           : {data} ({args.n_patients} patients: {n_train} training, "
          f"{args.n_patients - n_train} validation; prevalence {prev:.3f}; models {', '.join(MODELS)}; "
          f"{ROUNDED_MODEL} rounded to 2 decimals; seed {args.seed})")
    print(f"(a) dlr        : {' '.join(cmd_a)}")
    print(f"(b) pROC       : {' '.join(cmd_b)}")
    print(f"repeats        : {args.repeat} each, order a b a b ...")
    print()

    times = _alternate(args.repeat, (("a", "dlr ", cmd_a), ("b", "pROC", cmd_b)))

    med_a, med_b = statistics.median(times["a"]), statistics.median(times["b"])
    print()
    print(f"dlr  wall s: {', '.join(f'{t:.3f}' for t in times['a'])}  "
          f"median {med_a:.3f}  (min {min(times['a']):.3f}, max {max(times['a']):.3f})")
    print(f"pROC wall s: {', '.join(f'{t:.3f}' for t in times['b'])}  "
          f"median {med_b:.3f}  (min {min(times['b']):.3f}, max {max(times['b']):.3f})")
    print(f"ratio median(pROC) / median(dlr) = {med_b / med_a:.2f}  "
          f"({'dlr faster' if med_a < med_b else 'pROC faster'})")
    return 0


def _alternate(repeat: int, commands) -> dict:
    """Wall seconds of each (key, label, command), run ``repeat`` times in turn (a b a b ...)."""
    times = {key: [] for key, _, _ in commands}
    for i in range(1, repeat + 1):
        for key, label, cmd in commands:
            wall = run_timed(label or key, cmd)
            times[key].append(wall)
            print(f"run {i}  ({key}){' ' + label if label else ''}: {wall:8.3f} s", flush=True)
    return times


def _survival_overhead(args, data: Path, cmd_a: list[str], dlr_python: Path) -> int:
    """Time (a) against (c) = (a) + --time rfs_months --event recurrence, alternating."""
    cmd_c = [*cmd_a, "--time", "rfs_months", "--event", "recurrence"]
    cmd_c[cmd_c.index("--out") + 1] = str(OUT / "analyze_survival")
    print("== bench_analyze --survival: dlr analyze without and with --time/--event, whole processes ==")
    for line in machine_info(dlr_python):
        print(line)
    print(f"data           : {data} ({args.n_patients} patients, models {', '.join(MODELS)}, with rfs_months "
          f"and recurrence)")
    print(f"(a) dlr        : {' '.join(cmd_a)}")
    print(f"(c) + survival : {' '.join(cmd_c)}")
    print(f"repeats        : {args.repeat} each, order a c a c ...")
    print()
    times = _alternate(args.repeat, (("a", "", cmd_a), ("c", "", cmd_c)))
    med_a, med_c = statistics.median(times["a"]), statistics.median(times["c"])
    print()
    for key, label in (("a", "without"), ("c", "with   ")):
        print(f"{label} wall s: {', '.join(f'{t:.3f}' for t in times[key])}  median {statistics.median(times[key]):.3f}")
    print(f"survival adds {med_c - med_a:+.3f} s = {100 * (med_c / med_a - 1):+.1f} % (medians; target < 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
