"""In-process benchmark of ``analysis.discrimination.roc_auc_delong`` on 1,000,000 patients.

Two seeded cases, prevalence 0.3:

  continuous : binormal scores (AUC ~0.8) mapped into (0, 1), essentially no ties
  ties       : the same scores rounded to 2 decimals (at most 101 distinct values)

Each is timed with ``time.perf_counter`` for 5 runs after 1 warm-up (untimed); best and
median are printed. Timing covers the call only (input arrays already in memory; imports,
data generation and the warm-up excluded).

Before timing, the function is checked against an independent O(n^2) computation at
n = 2,000 (pairwise kernel psi = 1 if case > control, 1/2 if equal, 0 otherwise; AUC, DeLong
placements V10/V01, variance var(V10)/m + var(V01)/n, Wald CI), for both cases; every figure
must agree within 1e-12.

Run from the repository root::

    .venv/bin/python benchmarks/bench_delong_1m.py
    .venv/bin/python benchmarks/bench_delong_1m.py --n 5000000 --runs 3
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dlr.analysis.discrimination import delong_placements, roc_auc_delong  # noqa: E402

TOL = 1e-12


def make_case(n: int, seed: int, prevalence: float = 0.3, target_auc: float = 0.8, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(np.int64)
    d = np.sqrt(2.0) * statistics.NormalDist().inv_cdf(target_auc)
    s = 1.0 / (1.0 + np.exp(-(rng.standard_normal(n) + d * y - d / 2)))
    if ties:
        s = np.round(s, 2)
    return y, s


def brute_force(y: np.ndarray, s: np.ndarray, level: float = 0.95) -> dict:
    """AUC, DeLong placements, SE and Wald CI straight from the pairwise kernel, O(m * n)."""
    cases, controls = s[y == 1], s[y == 0]
    m, n = cases.size, controls.size
    psi = (cases[:, None] > controls[None, :]).astype(float) + 0.5 * (cases[:, None] == controls[None, :])
    v10 = psi.mean(axis=1)  # per case: fraction of controls below (ties 1/2)
    v01 = psi.mean(axis=0)  # per control: fraction of cases above (ties 1/2)
    auc = psi.mean()
    se = float(np.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n))
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return {"estimate": float(auc), "se": se, "ci_low": min(max(auc - z * se, 0.0), 1.0),
            "ci_high": min(max(auc + z * se, 0.0), 1.0), "v10": v10, "v01": v01}


def check(n: int, seed: int) -> None:
    print(f"-- check against O(n^2) pairwise computation, n = {n:,} --")
    for name, ties in (("continuous", False), ("ties", True)):
        y, s = make_case(n, seed, ties=ties)
        ref = brute_force(y, s)
        got = roc_auc_delong(y, s)
        pl = delong_placements(y, s)
        diffs = {f: abs(getattr(got, f) - ref[f]) for f in ("estimate", "se", "ci_low", "ci_high")}
        diffs["V10 (max)"] = float(np.max(np.abs(pl.cases - ref["v10"])))
        diffs["V01 (max)"] = float(np.max(np.abs(pl.controls - ref["v01"])))
        diffs["placements AUC"] = abs(pl.auc - ref["estimate"])
        worst = max(diffs.values())
        print(f"{name:10s}: AUC {got.estimate:.12f} vs {ref['estimate']:.12f}, SE {got.se:.12f} vs {ref['se']:.12f}, "
              f"distinct scores {np.unique(s).size}; max |diff| {worst:.2e}")
        for f, dv in diffs.items():
            assert dv <= TOL, f"{name}: {f} differs by {dv:.3e} (> {TOL:g})"
    print(f"agree: all within {TOL:g}")
    print()


def bench(n: int, seed: int, runs: int) -> None:
    print(f"-- roc_auc_delong timing, n = {n:,}, 1 warm-up + {runs} timed runs --")
    for name, ties in (("continuous", False), ("ties", True)):
        y, s = make_case(n, seed, ties=ties)
        res = roc_auc_delong(y, s)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            res = roc_auc_delong(y, s)
            times.append(time.perf_counter() - t0)
        print(f"{name:10s}: cases {int(y.sum()):,}, distinct scores {np.unique(s).size:,}; "
              f"AUC {res.estimate:.6f} (SE {res.se:.6f}, CI {res.ci_low:.6f}-{res.ci_high:.6f})")
        print(f"{'':10s}  runs s: {', '.join(f'{t:.4f}' for t in times)}; "
              f"best {min(times):.4f} s, median {statistics.median(times):.4f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="patients for the timing (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (default 5)")
    ap.add_argument("--check-n", type=int, default=2000, help="patients for the O(n^2) check (default 2,000)")
    ap.add_argument("--seed", type=int, default=20261127)
    args = ap.parse_args(argv)

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    print("== bench_delong_1m: analysis.discrimination.roc_auc_delong ==")
    print(f"date (UTC) {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}; {platform.platform()}; "
          f"CPUs {os.cpu_count()} (usable {usable}); python {sys.version.split()[0]}; numpy {np.__version__}")
    print()
    check(args.check_n, args.seed)
    bench(args.n, args.seed, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
