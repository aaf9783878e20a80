"""One process pool for every parallel step of `dlr` (radiomics extraction, the out-of-fold
refits, the deep arm's slices and fits).

Its workers are started with ``spawn``: a fresh interpreter, never a ``fork`` of this process,
which by then may have run SimpleITK's, XGBoost's (OpenMP) or torch's threads (a child forked
from a threaded process can deadlock on a lock another thread held). Each worker limits the
numerical libraries to one thread, so ``jobs`` processes use ``jobs`` cores.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Optional

#: the environment variables that size the numerical libraries' thread pools
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _start_worker(initializer: Optional[Callable], initargs: tuple) -> None:
    for var in THREAD_VARIABLES:
        os.environ[var] = "1"
    if initializer is not None:
        initializer(*initargs)


def process_pool(jobs: int, *, initializer: Optional[Callable] = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned worker processes (use as a context manager); ``initializer``
    runs once in each, after the thread limits are set."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(initializer, initargs))
