"""The rule engine: a stage when the inputs present determine it, despite missing ones.

A stage is reported when the inputs present determine it: every value the missing inputs could
take gives the same stage (a patient with ECOG PS 3 is BCLC D whatever the tumour size).
Otherwise the system is empty for that patient (None / NaN / <NA>) and ``missing`` names the
inputs that were missing. With ``require_all_inputs=True`` a system is empty whenever any of its
inputs is missing. Continuous scores (ALBI, the ratios, ERASL) need all of their inputs and do
not use this engine (see :mod:`dlr.modeling.staging.results`).
"""
from __future__ import annotations

import itertools
from typing import Callable

from .inputs import _CLIP_AFP, _TBIL_3_MGDL, _Inputs

# Representative values of a missing input: one inside each interval between the cut-offs of every
# rule, and the cut-offs themselves (2, 3 and 5 cm; inclusive in one version, strict in the other).
# The rules are step functions of these inputs, so agreement over the representatives is agreement
# over every value (checked against complete data by a randomised test).
_DIAMETERS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
_DOMAINS = {
    "ecog_ps": (0.0, 1.0, 2.0, 3.0, 4.0),
    "macrovascular_invasion": (0.0, 1.0),
    "portal_vein_thrombosis": (0.0, 1.0),
    "extrahepatic_spread": (0.0, 1.0),
    "tumor_extent_over_50pct": (0.0, 1.0),
    "tumor_diameter": _DIAMETERS,
    "afp": (0.0, _CLIP_AFP),
    "ascites": (0.0, 1.0),
    "alb": (20.0, 30.0, 40.0),
    "tbil": (20.0, _TBIL_3_MGDL, 60.0),
}
_OPEN = object()  # "not determined by the inputs present"


def _staged(inp: _Inputs, system: str, names: tuple[str, ...], rule: Callable[..., object], *,
            require_all_inputs: bool) -> tuple[list, list[tuple]]:
    """Apply ``rule(**inputs)`` to every patient; (values, missing rows). None = empty."""
    values, missing, cache = [], [], {}
    for i in range(inp.n):
        known = {name: inp.get(name, i) for name in names}
        unknown = [name for name in names if known[name] is None]
        if not unknown:
            key = ("complete", *known.values())
            if key not in cache:
                cache[key] = rule(**known)
            values.append(cache[key])
            continue
        domains = [inp.domain(name, i, _DOMAINS.get(name)) for name in unknown]
        if require_all_inputs or any(d is None for d in domains):
            result = _OPEN
        else:
            key = ("open", tuple(known.values()), tuple(domains))
            if key not in cache:
                cache[key] = _determined(rule, known, unknown, domains)
            result = cache[key]
        if result is _OPEN:
            values.append(None)
            missing.append((inp.ids[i], system, ", ".join(inp.label(name, i) for name in unknown)))
        else:
            values.append(result)
    return values, missing


def _determined(rule, known: dict, unknown: list[str], domains: list) -> object:
    """The rule's value if every completion of the unknown inputs gives the same value, else _OPEN."""
    first = _OPEN
    for combo in itertools.product(*domains):
        value = rule(**{**known, **dict(zip(unknown, combo))})
        if first is _OPEN:
            first = value
        elif value != first:
            return _OPEN
    return first
