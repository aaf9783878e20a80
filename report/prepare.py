"""Quarto's pre-render step (``_quarto.yml``): ``report/_generated/`` for the latest run.

``python -m dlr.report.prepare [RUN]``: the run is the argument, else ``$DLR_RUN``, else the newest
``runs/*/run.json`` under the current folder (Quarto runs this at the project root).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from dlr.core.errors import InputError


def main(argv=None) -> int:
    from .build import SOURCES, latest_run, prepare_sources
    from .render import renderer_name

    argv = sys.argv[1:] if argv is None else argv
    run = Path(argv[0]) if argv else (Path(os.environ["DLR_RUN"]) if os.environ.get("DLR_RUN") else latest_run())
    if run is None:
        print("dlr.report.prepare: no run found (runs/*/run.json); run `dlr run STUDY --out runs/NAME` or set DLR_RUN",
              file=sys.stderr)
        return 2
    try:
        prepare_sources(run, SOURCES, renderer=renderer_name("quarto" if os.environ.get("QUARTO_PROJECT_DIR") else "auto"))
    except InputError as exc:
        print(f"dlr.report.prepare: error: {exc}", file=sys.stderr)
        return 2
    print(f"dlr.report.prepare: report/_generated/ written from {run}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
