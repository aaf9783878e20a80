"""Radiomics extraction (`dlr extract`, contract section 3): PyRadiomics on every patient,
reader and phase, in parallel, cached and resumable.

Unit of work
------------
One *case* = (patient, reader, phase): the phase image and that reader's tumour mask, prepared
by :func:`dlr.modeling.radiomics.preprocess.preprocess_phase` and passed to PyRadiomics'
``RadiomicsFeatureExtractor`` with the parameters of a standard PyRadiomics YAML file (by
default ``modeling/params/radiomics.yaml``: 1037 features per phase).

Preprocessing hands PyRadiomics a binary mask of the tumour (study.yaml's ``mask_label``, default
1), so the parameter file's ``setting: label`` must be 1 (or absent): a parameter file naming
another label is refused (:class:`ParamsError`), the tumour's label belongs in study.yaml. An
image with NaN or infinite voxels fails its case, the reason giving their count.

Cache
-----
Each case's result is a JSON file ``RUN/features/cache/<key>.json`` where ``key`` is the
SHA-256 of (image file content, mask file content, parameters digest); the digest covers the
PyRadiomics parameters, the preprocessing settings and the versions of PyRadiomics and of this
module's feature definition. So a rerun with nothing changed recomputes nothing, a changed
mask recomputes only its case, and an interrupted run keeps every case already finished (each
result is written by an atomic rename as soon as it arrives). Failures that depend only on the
data (a one-voxel mask, a flat image, an alignment check) are cached as failures; unexpected
errors (memory, I/O) are reported and retried by the next run.

Parallelism
-----------
``jobs = 1`` runs in this process; ``jobs > 1`` uses that many worker processes, each with one
SimpleITK and BLAS thread (N single-threaded workers keep N cores busy without
oversubscription); ``scheduler = "tcp://host:port"`` sends the cases to a Dask distributed
cluster, whose workers must see the study folder at the same path and have dlr installed.
Results always come back to this process, which alone writes the cache and the tables.

Outputs
-------
``RUN/features/radiomics.csv``
    One row per patient and reader (``patient_id``, ``reader`` 1 or 2), one column per feature
    named ``<PHASE>_<PyRadiomics feature name>``; a failed case leaves its phase's cells empty.
``RUN/features/extraction_log.csv``
    One row per case: status (``ok`` / ``failed``), reason, whether it came from the cache,
    seconds, and the alignment check of preprocessing.
``RUN/features/radiomics_params.yaml``, ``RUN/features/preprocessing.json``
    The settings used, for the report and for re-running.
``RUN/features/provenance.json``
    One entry per file above (:mod:`dlr.core.output`): the SHA-256s of study.yaml, clinical.csv and
    the parameter file, one digest of all cases (:func:`cases_digest`), the preprocessing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from dlr.core.errors import InputError
from dlr.core.csvsafe import read_back, write_csv
from dlr.core.output import file_sha256, provenance, staged_file, staged_files

from ..cluster import dask_results
from ..config import read_yaml
from .preprocess import TUMOUR_LABEL, PreprocessError, PreprocessSettings, preprocess_phase

DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params" / "radiomics.yaml"
#: bump when preprocessing or the record format changes meaning: every cached case is then recomputed
FEATURE_VERSION = "dlr-radiomics-1"
FEATURES_DIR = "features"


class ParamsError(InputError):
    """The PyRadiomics parameter file is missing or invalid."""


class CaseError(ValueError):
    """One case cannot be extracted for a reason in its data (recorded, the run goes on)."""


# --------------------------------------------------------------------------------------------
# parameters


def load_params(path=None) -> dict:
    """Read and validate a PyRadiomics parameter file (YAML); the shipped one by default.

    Raises
    ------
    ParamsError
        The file is missing, not YAML, or rejected by PyRadiomics' schema (message names the file).
    """
    path = Path(path) if path is not None else DEFAULT_PARAMS
    params = read_yaml(path, error=ParamsError, missing="no such PyRadiomics parameter file")
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: a PyRadiomics parameter file holds a mapping (imageType, featureClass, setting)")
    try:
        _extractor(params)
    except Exception as exc:  # pykwalify's SchemaError and friends: all mean the same to the user
        raise ParamsError(f"{path}: PyRadiomics rejects the parameters ({str(exc).strip().splitlines()[0]})") from None
    return params


def params_digest(params: dict, preprocessing: PreprocessSettings, mask_label: int = TUMOUR_LABEL) -> str:
    """SHA-256 of everything besides the image and mask that determines a case's features
    (``mask_label`` enters it only when it is not 1, so that the default keeps its digest)."""
    import radiomics

    content = {"params": params, "preprocessing": preprocessing.to_dict(), "version": FEATURE_VERSION,
               "pyradiomics": radiomics.__version__}
    if mask_label != TUMOUR_LABEL:
        content["mask_label"] = int(mask_label)
    blob = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_params_label(params: dict, path) -> None:
    """ParamsError when the parameter file's ``setting: label`` is not 1: dlr's preprocessing
    hands PyRadiomics a binary mask (1 = tumour), so another label would find no tumour."""
    label = (params.get("setting") or {}).get("label", TUMOUR_LABEL)
    if label != TUMOUR_LABEL:
        raise ParamsError(f"{path}: setting label is {label!r}, but dlr's preprocessing gives PyRadiomics a binary "
                          f"mask (label {TUMOUR_LABEL} = tumour). Fix: set `label: {TUMOUR_LABEL}` in the parameter "
                          f"file (or remove it) and name the tumour's label in study.yaml as `mask_label: {label}`")


_EXTRACTORS: dict[str, object] = {}


def _extractor(params: dict):
    """A RadiomicsFeatureExtractor for ``params``, built once per process."""
    key = json.dumps(params, sort_keys=True, default=str)
    if key not in _EXTRACTORS:
        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        logging.getLogger("radiomics").setLevel(logging.ERROR)
        _EXTRACTORS[key] = featureextractor.RadiomicsFeatureExtractor(json.loads(json.dumps(params)))
    return _EXTRACTORS[key]


def _phantom():
    """A small textured sphere: the case every parameter set can extract, for the expected names."""
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:40, :40, :40]
    sphere = ((zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2) <= 10**2
    array = (100 + 30 * rng.standard_normal((40, 40, 40)) + 50 * sphere).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    mask = sitk.GetImageFromArray(sphere.astype(np.uint8))
    return image, mask


def expected_feature_names(params: dict) -> tuple[str, ...]:
    """The feature names PyRadiomics yields with ``params`` on a case large enough for every filter."""
    image, mask = _phantom()
    result = _extractor(params).execute(image, mask)
    return tuple(k for k in result if not k.startswith("diagnostics_"))


# --------------------------------------------------------------------------------------------
# one case


def extract_case(image, mask, *, params: dict, preprocessing: Optional[PreprocessSettings] = None,
                 expected: Optional[tuple] = None, label: int = TUMOUR_LABEL) -> tuple[dict, dict]:
    """Preprocess one phase and extract its features.

    Parameters
    ----------
    image, mask : path or SimpleITK.Image
    params : dict
        PyRadiomics parameters (:func:`load_params`).
    preprocessing : PreprocessSettings or None
        None skips dlr's preprocessing and hands the image and mask to PyRadiomics as they are
        (PyRadiomics' own settings then apply, as in its baseline tests).
    expected : tuple of str, optional
        Feature names the case must yield (:func:`expected_feature_names`); a case that yields
        fewer (a filter skipped on a tiny volume) fails rather than leaving silent holes.
    label : int, default 1
        The tumour's label in ``mask`` (study.yaml ``mask_label``), for the preprocessing, which
        hands PyRadiomics a binary mask; without preprocessing the parameters' ``label`` applies.

    Returns
    -------
    (features, check) : name -> float in PyRadiomics' order, and the preprocessing check as a dict.

    Raises
    ------
    PreprocessError, CaseError
    """
    check = {}
    if preprocessing is not None:
        prepared = preprocess_phase(image, mask, preprocessing, label=label)
        image, mask = prepared.image, prepared.mask
        check = prepared.check.to_frame().iloc[0].to_dict()
    else:
        image, mask = str(image) if isinstance(image, Path) else image, str(mask) if isinstance(mask, Path) else mask
    try:
        result = _extractor(params).execute(image, mask)
    except (ValueError, RuntimeError, IndexError) as exc:
        raise CaseError(f"PyRadiomics: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") \
            from None
    features = {}
    for name, value in result.items():
        if name.startswith("diagnostics_"):
            continue
        features[name] = float(np.asarray(value).reshape(-1)[0])
    if expected is not None and tuple(features) != tuple(expected):
        missing = [n for n in expected if n not in features]
        raise CaseError(f"PyRadiomics returned {len(features)} features instead of {len(expected)} (missing e.g. "
                        f"{', '.join(missing[:3]) or 'none'}); the volume around the tumour is too small for a filter")
    return features, check


@dataclass(frozen=True)
class Case:
    """One (patient, reader, phase) to extract; ``key`` names its cache record; ``label`` is
    the tumour's label in the mask (study.yaml ``mask_label``)."""

    patient_id: str
    reader: int
    phase: str
    image: str
    mask: str
    key: str
    label: int = TUMOUR_LABEL


def _limit_threads() -> None:
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def compute_case(case: Case, params: dict, preprocessing: PreprocessSettings, expected: tuple) -> dict:
    """Extract one case and return its cache record (never raises for a failure of the case)."""
    _limit_threads()
    start = time.perf_counter()
    record = {"key": case.key, "patient_id": case.patient_id, "reader": case.reader, "phase": case.phase,
              "version": FEATURE_VERSION}
    try:
        features, check = extract_case(case.image, case.mask, params=params, preprocessing=preprocessing,
                                       expected=expected, label=case.label)
        record.update(status="ok", reason="", features=features, check=check)
    except (PreprocessError, CaseError) as exc:
        record.update(status="failed", reason=str(exc), features={}, check={}, cacheable=True)
    except Exception as exc:  # noqa: BLE001 - reported per case; not cached, so the next run retries it
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}", features={}, check={}, cacheable=False)
    record["seconds"] = time.perf_counter() - start
    return record


# --------------------------------------------------------------------------------------------
# the study


def file_digest(path, *, _memo: dict = {}) -> str:  # noqa: B006 - per-process memo keyed by (path, size, mtime)
    """SHA-256 of a file's bytes (memoised on path, size and modification time)."""
    stat = os.stat(path)
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _memo:
        _memo[memo_key] = file_sha256(path)
    return _memo[memo_key]


def plan_cases(study, digest: str) -> list[Case]:
    """Every (patient, reader, phase) of a study, reader 1 first, in clinical.csv order
    (``digest`` from :func:`params_digest` with the study's ``mask_label``)."""
    label = study.config.mask_label
    cases = []
    for reader, masks in ((1, study.masks), (2, study.masks_reader2)):
        for pid in study.patient_ids:
            for phase in study.config.phases:
                mask = masks.get(pid, {}).get(phase)
                if mask is None:
                    continue
                image = study.images[pid][phase]
                key = hashlib.sha256(f"{file_digest(image)}:{file_digest(mask)}:{digest}".encode()).hexdigest()
                cases.append(Case(str(pid), reader, phase, str(image), str(mask), key, label))
    return cases


def _read_record(path: Path) -> Optional[dict]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or truncated by a crash: recompute
    return record if record.get("version") == FEATURE_VERSION and "status" in record else None


def _checked_record(path: Path, cases: list) -> Optional[dict]:
    """The cache record at ``path`` for ``cases`` (the cases whose inputs hash to its key), or
    None (recomputed): absent, truncated, of another version, or, with a warning, a record that
    is not these cases' (its key is not the file's, or its patient, reader and phase are none of
    theirs: a file copied or renamed by hand)."""
    record = _read_record(path)
    if record is None:
        return None
    key = cases[0].key
    mine = {(str(c.patient_id), int(c.reader), str(c.phase)) for c in cases}
    theirs = (str(record.get("patient_id")), _as_int(record.get("reader")), str(record.get("phase")))
    if record.get("key") == key and theirs in mine:
        return record
    case = cases[0]
    warnings.warn(f"features cache: {path} holds the record of patient {theirs[0]} reader {theirs[1]} phase {theirs[2]}"
                  f" (key {str(record.get('key'))[:12]}...), not of patient {case.patient_id} reader {case.reader} "
                  f"phase {case.phase} (key {key[:12]}...), whose inputs it is named after; ignored and computed "
                  "again", stacklevel=3)
    return None


def _as_int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _write_record(cache: Path, record: dict) -> None:
    # content-addressed (the key hashes image, mask and parameters): no provenance entry
    with staged_file(cache / f"{record['key']}.json") as tmp:
        with open(tmp, "w") as f:
            json.dump(record, f)


@dataclass(frozen=True)
class ExtractionSummary:
    """What :func:`extract_study` did.

    Attributes
    ----------
    out : Path
        ``RUN/features``.
    n_cases, n_computed, n_cached, n_failed : int
        Cases in the study, computed by this run, taken from the cache, failed (either way).
    n_features_per_phase : int
        Expected features per phase (1037 with the shipped parameters).
    seconds : float
        Wall time of this run.
    log : DataFrame
        ``extraction_log.csv``.
    """

    out: Path
    n_cases: int
    n_computed: int
    n_cached: int
    n_failed: int
    n_features_per_phase: int
    seconds: float
    log: pd.DataFrame

    @property
    def failures(self) -> pd.DataFrame:
        return self.log[self.log["status"] != "ok"]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"out": str(self.out), "n_cases": self.n_cases, "n_computed": self.n_computed,
                              "n_cached": self.n_cached, "n_failed": self.n_failed,
                              "n_features_per_phase": self.n_features_per_phase, "seconds": self.seconds}])


def _local_results(pending: list[Case], jobs: int, args: tuple):
    """Yield records as the cases finish, in this process or in ``jobs`` worker processes."""
    if jobs <= 1:
        for case in pending:
            yield compute_case(case, *args)
        return
    from concurrent.futures import as_completed

    from dlr.core.parallel import process_pool

    # spawned workers: this process has already run SimpleITK's thread pool (the parameters' phantom)
    with process_pool(jobs, initializer=_limit_threads) as pool:
        futures = [pool.submit(compute_case, case, *args) for case in pending]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _dask_results(pending: list[Case], scheduler: str, args: tuple):
    return dask_results(compute_case, pending, scheduler, key=lambda case: f"dlr-radiomics-{case.key}", shared=args)


def _log_row(case: Case, record: dict, cached: bool) -> dict:
    check = record.get("check") or {}
    return {"patient_id": case.patient_id, "reader": case.reader, "phase": case.phase, "status": record["status"],
            "reason": record.get("reason", ""), "from_cache": cached, "seconds": record.get("seconds", np.nan),
            "native_voxels": check.get("native_voxels", np.nan),
            "resampled_voxels": check.get("resampled_voxels", np.nan),
            "volume_change": check.get("volume_change", np.nan),
            "centroid_shift_mm": check.get("centroid_shift_mm", np.nan),
            "grid_size": check.get("grid_size", ""), "key": case.key}


def _feature_table(cases: list[Case], records: dict, phases: list[str], names: tuple) -> pd.DataFrame:
    """radiomics.csv: one row per (patient, reader), ``<PHASE>_<feature>`` columns."""
    rows: dict[tuple, dict] = {}
    for case in cases:
        row = rows.setdefault((case.patient_id, case.reader), {"patient_id": case.patient_id, "reader": case.reader})
        record = records[case.key]
        if record["status"] == "ok":
            row.update({f"{case.phase}_{n}": record["features"][n] for n in names})
    columns = ["patient_id", "reader"] + [f"{p}_{n}" for p in phases for n in names]
    return pd.DataFrame(list(rows.values()), columns=columns)


def extract_study(study, out, *, jobs: int = 1, scheduler: Optional[str] = None, params_path=None,
                  preprocessing: Optional[PreprocessSettings] = None,
                  progress: Optional[Callable[[int, int, dict], None]] = None) -> ExtractionSummary:
    """Extract every case of a study into ``out/features`` (contract section 3), reusing the cache.

    Parameters
    ----------
    study : modeling.study.Study
        A validated study with images.
    out : path
        The run folder ``RUN``.
    jobs : int
        Worker processes (1 = this process).
    scheduler : str, optional
        Address of a Dask distributed scheduler; overrides ``jobs``.
    params_path : path, optional
        PyRadiomics parameter file; default study.yaml's ``radiomics_params`` (relative to the
        study folder) or the shipped ``modeling/params/radiomics.yaml``.
    preprocessing : PreprocessSettings, optional
        Default: study.yaml's ``preprocessing:`` or :class:`PreprocessSettings` defaults.
    progress : callable, optional
        ``progress(done, total, record)`` after each case (cached cases count at the start).

    Returns
    -------
    ExtractionSummary
    """
    start = time.perf_counter()
    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    if not study.config.phases:
        raise InputError(f"{study.root}/study.yaml lists no phases: there are no images to extract features from")
    if params_path is None and study.config.radiomics_params:
        params_path = study.root / study.config.radiomics_params
    params_file = Path(params_path) if params_path is not None else DEFAULT_PARAMS
    params = load_params(params_file)
    check_params_label(params, params_file)
    if preprocessing is None:
        preprocessing = PreprocessSettings(**(study.config.preprocessing or {}))
    digest = params_digest(params, preprocessing, study.config.mask_label)
    names = expected_feature_names(params)

    features_dir = Path(out) / FEATURES_DIR
    cache = features_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    cases = plan_cases(study, digest)
    by_key = {}
    for case in cases:
        by_key.setdefault(case.key, []).append(case)
    records: dict[str, dict] = {}
    cached_keys = set()
    for key, sharing in by_key.items():
        record = _checked_record(cache / f"{key}.json", sharing)
        if record is not None:
            records[key] = record
            cached_keys.add(key)
    pending = list({c.key: c for c in cases if c.key not in records}.values())  # identical content once
    done = len(cases) - sum(1 for c in cases if c.key not in records)
    if progress is not None:
        progress(done, len(cases), {})
    args = (params, preprocessing, names)
    results = _dask_results(pending, scheduler, args) if scheduler else _local_results(pending, jobs, args)
    for record in results:
        records[record["key"]] = record
        if record["status"] == "ok" or record.get("cacheable", False):
            _write_record(cache, record)
        done += len(by_key[record["key"]])
        if progress is not None:
            progress(done, len(cases), record)

    log = pd.DataFrame([_log_row(c, records[c.key], c.key in cached_keys) for c in cases])
    table = _feature_table(cases, records, list(study.config.phases), names)
    _write_outputs(features_dir, table, log, params, preprocessing,
                   _provenance(study, params_file, preprocessing, cases))
    n_failed = int((log["status"] != "ok").sum())
    if n_failed:
        failed = log[log["status"] != "ok"]
        listed = "; ".join(f"{r.patient_id} reader {r.reader} {r.phase}: {r.reason}" for r in failed.head(5).itertuples())
        warnings.warn(f"{n_failed} case(s) failed and are left empty in radiomics.csv ({listed}"
                      f"{'; ...' if n_failed > 5 else ''}); see {features_dir / 'extraction_log.csv'}", stacklevel=2)
    return ExtractionSummary(features_dir, len(cases), int((~log["from_cache"]).sum()), int(log["from_cache"].sum()),
                             n_failed, len(names), time.perf_counter() - start, log)


def cases_digest(cases: list[Case]) -> str:
    """One SHA-256 of every case: its patient, reader, phase and cache key (which hashes the
    image, the mask and the parameters), sorted."""
    lines = sorted(f"{c.patient_id}\t{c.reader}\t{c.phase}\t{c.key}\n" for c in cases)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _provenance(study, params_file: Path, preprocessing: PreprocessSettings, cases: list[Case]) -> dict:
    """The provenance of the features folder's files: the study's files, the parameter file,
    one digest of all cases, and the preprocessing (not jobs or the scheduler)."""
    inputs = {"study.yaml": study.root / "study.yaml", "clinical.csv": study.root / "clinical.csv",
              "radiomics_params": Path(params_file), "cases": cases_digest(cases)}
    settings = {"preprocessing": preprocessing.to_dict(), "feature_version": FEATURE_VERSION}
    if study.config.mask_label != TUMOUR_LABEL:
        settings["mask_label"] = study.config.mask_label
    return provenance(inputs=inputs, settings=settings)


def _write_outputs(features_dir: Path, table: pd.DataFrame, log: pd.DataFrame, params: dict,
                   preprocessing: PreprocessSettings, info: Optional[dict] = None) -> None:
    """Write radiomics.csv and its companions together: all are replaced, or none; with
    ``info``, each gets its entry in ``features/provenance.json``."""
    import yaml

    with staged_files(features_dir, provenance_info=info) as staging:
        write_csv(table, staging / "radiomics.csv", float_format="%.17g")
        write_csv(log, staging / "extraction_log.csv", float_format="%.6g")
        (staging / "radiomics_params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (staging / "preprocessing.json").write_text(json.dumps(preprocessing.to_dict(), indent=1) + "\n")


def read_radiomics(path) -> pd.DataFrame:
    """Read ``RUN/features/radiomics.csv`` (patient ids as strings, reader as int)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no radiomics features; run `dlr extract STUDY --out RUN` first")
    frame = read_back(pd.read_csv(path, dtype={"patient_id": str}))
    missing = {"patient_id", "reader"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {sorted(missing)} (contract section 3)")
    return frame
