"""Benchmark of `dlr extract`: time per case and phase, --jobs 2 against --jobs 1, and a rerun.

Run by hand (not a test):

    .venv/bin/python benchmarks/bench_extract.py [--n 10] [--repeat 2]

A synthetic study (quick profile, the shipped 1037-feature parameters at 1 mm) is written
once; then, ``--repeat`` times and interleaved, ``dlr extract --jobs 1`` and ``--jobs 2`` run
as whole processes into fresh run folders (empty cache), and a rerun of the ``--jobs 2`` folder
with nothing changed. Reports the median wall times, the speed-up (jobs 1 / jobs 2, pair by
pair), the rerun as a share of the first run, and the per-case seconds from the extraction log.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dlr.cli", *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="patients (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repetitions (default 2)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="dlr-bench-extract-"))
    study = work / "study"
    if not study.exists():
        subprocess.run([sys.executable, "-m", "dlr.cli", "synth", "--out", str(study), "--n", str(args.n)], cwd=REPO,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    one, two, rerun = [], [], []
    for k in range(args.repeat):
        for jobs, times in ((1, one), (2, two)):
            out = work / f"run-j{jobs}-{k}"
            shutil.rmtree(out, ignore_errors=True)
            times.append(_timed(["extract", str(study), "--out", str(out), "--jobs", str(jobs)]))
            print(f"repeat {k + 1}: --jobs {jobs}: {times[-1]:.1f} s", flush=True)
        rerun.append(_timed(["extract", str(study), "--out", str(work / f"run-j2-{k}"), "--jobs", "2"]))
        print(f"repeat {k + 1}: rerun, nothing changed: {rerun[-1]:.2f} s", flush=True)
    log = pd.read_csv(work / "run-j1-0" / "features" / "extraction_log.csv")
    computed = log[~log["from_cache"]]
    per_phase = computed.groupby("phase")["seconds"].agg(["count", "median", "mean", "max"])
    speedups = [a / b for a, b in zip(one, two)]
    print(f"\nstudy: {args.n} patients, {len(log)} cases (patient x reader x phase), 1037 features per case")
    print("seconds per case (one process, --jobs 1):")
    print(per_phase.round(2).to_string())
    print(f"voxels per case at 1 mm: median {computed['resampled_voxels'].median():.0f}, "
          f"max {computed['resampled_voxels'].max():.0f}")
    print(f"--jobs 1: median {statistics.median(one):.1f} s; --jobs 2: median {statistics.median(two):.1f} s; "
          f"speed-up (pairwise) median {statistics.median(speedups):.2f}x (runs: "
          f"{', '.join(f'{s:.2f}' for s in speedups)})")
    share = [r / t for r, t in zip(rerun, two)]
    print(f"rerun with nothing changed: median {statistics.median(rerun):.2f} s = "
          f"{100 * statistics.median(share):.1f}% of the --jobs 2 first run")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
