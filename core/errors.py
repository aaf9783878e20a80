"""Exceptions and warnings shared by every stage; importing this module loads nothing else."""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


class InputError(ValueError):
    """Bad input or usage: the message names the file, patient, column or option and the fix.

    The command line turns it into exit status 2 without a traceback (contract section 1).
    """


class UndefinedStatisticWarning(UserWarning):
    """A statistic is undefined for the data given (e.g. a single-class cohort); it is NaN."""


@contextlib.contextmanager
def collected_warnings(*, ignore: tuple = ()) -> Iterator[list[str]]:
    """Record the warnings raised inside the block, as text, into the list it yields.

    Every warning is recorded (``simplefilter("always")``), in the order raised, except those
    of the categories in ``ignore`` (e.g. ``FutureWarning`` from a dependency). The list is
    filled when the block ends; the caller reports it (the command line as ``warning:`` lines).
    """
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield lines
        finally:
            lines.extend(str(w.message) for w in caught if not (ignore and issubclass(w.category, ignore)))
