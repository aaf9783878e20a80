"""Tasks on a Dask cluster (`--scheduler ADDRESS`): the extraction's cases and the out-of-fold refits.

Both send independent, picklable tasks and consume each result as it finishes; what the cluster
cannot be asked (dask.distributed missing, no scheduler at the address) is an input error with
its fix, and the tasks still queued are cancelled when the consumer stops early (Ctrl-C, an
error in a result).
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

from dlr.core.errors import InputError


def dask_results(function: Callable, tasks: Iterable, scheduler: str, *, key: Callable[[object], str],
                 shared: tuple = ()) -> Iterator:
    """``function(task, *shared)`` for every task on the cluster at ``scheduler``, yielded in the
    order they finish; ``shared`` is scattered to every worker once; ``key(task)`` names a task
    in the Dask dashboard."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise InputError(f"--scheduler needs dask.distributed ({exc}); pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                         "`dask scheduler` and workers with `dask worker ADDRESS`") from None
    with client:
        scattered = [client.scatter(a, broadcast=True) for a in shared]
        futures = [client.submit(function, task, *scattered, key=key(task), pure=False) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
