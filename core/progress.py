"""Progress messages: a verb takes ``progress``, a callable given one line per step (the
command line prints them with the elapsed time), or None to stay silent."""
from __future__ import annotations

from typing import Callable, Optional

Progress = Optional[Callable[[str], None]]


def say(progress: Progress, message: str) -> None:
    """``progress(message)`` unless ``progress`` is None."""
    if progress is not None:
        progress(message)
