"""One resolution of a run's settings from study.yaml and the command line.

`dlr run` and the stage verbs (`dlr extract`, `dlr train`) resolve the profile, the arms, the
seed, the radiomics preprocessing (the quick profile's 2 mm voxels), the PyRadiomics parameter
file and the deep arm's settings here and nowhere else, so that the stages run one at a time give
what `dlr run` gives (contract section 3). Precedence: the command line, then study.yaml, then the
profile's defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dlr.analysis.defaults import DEFAULT_BOOTSTRAP
from dlr.core.errors import InputError

PROFILES = ("quick", "paper")
#: the quick profile's radiomics voxels (mm) unless study.yaml's ``preprocessing: spacing`` says otherwise
QUICK_SPACING = (2.0, 2.0, 2.0)
ARMS = ("clinical", "radiomics", "deep")


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a run's results besides its input files (never ``jobs``)."""

    profile: str
    arms: tuple
    seed: int
    preprocessing: tuple          # (key, value) pairs of PreprocessSettings' overrides, sorted
    params_file: Optional[Path]   # the PyRadiomics parameter file (None: no radiomics arm)
    n_bootstrap: int
    deep: Optional[object]        # DeepSettings of the deep arm (None: no deep arm)
    device: str

    def preprocess(self):
        """The radiomics preprocessing (:class:`dlr.modeling.radiomics.preprocess.PreprocessSettings`)."""
        from dlr.modeling.radiomics.preprocess import PreprocessSettings

        return PreprocessSettings(**dict(self.preprocessing))

    @property
    def preprocessing_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocessing}


def resolve_settings(root, config=None, *, profile: Optional[str] = None, arms=None, seed: Optional[int] = None,
                     params=None, n_bootstrap: int = DEFAULT_BOOTSTRAP, device: str = "auto") -> RunSettings:
    """The settings of a run of the study folder ``root`` (``config``: its loaded study.yaml)."""
    from dlr.modeling.config import load_study_config

    root = Path(root)
    if config is None:
        config = load_study_config(root / "study.yaml")
    profile = profile or config.profile
    if profile not in PROFILES:
        raise InputError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if n_bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {n_bootstrap}")
    arms = tuple(arms) if arms else (ARMS if config.phases else ("clinical",))
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise InputError(f"--arms: unknown arm(s) {', '.join(unknown)}; the arms are {', '.join(ARMS)}")
    if any(a in ("radiomics", "deep") for a in arms) and not config.phases:
        raise InputError(f"{root / 'study.yaml'} lists no phases (a clinical-only study): run it with --arms clinical")
    preprocessing = dict(config.preprocessing or {})
    if profile == "quick" and "spacing" not in preprocessing:
        preprocessing["spacing"] = QUICK_SPACING
    params_file = None
    if "radiomics" in arms:
        from dlr.modeling.radiomics.extraction import DEFAULT_PARAMS

        params_file = Path(params) if params else (root / config.radiomics_params if config.radiomics_params
                                                   else DEFAULT_PARAMS)
    deep = None
    if "deep" in arms:
        from dlr.modeling.deep.settings import deep_settings

        try:
            deep = deep_settings(profile, **(config.deep or {}))
        except ValueError as exc:
            raise InputError(f"{root / 'study.yaml'}: deep: {exc}") from None
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in preprocessing.items()))
    return RunSettings(profile, arms, config.seed if seed is None else int(seed), frozen, params_file,
                       int(n_bootstrap), deep, device)
