"""`dlr package RUN --out FILE.zip`: the reviewer package of a run. The run's members are read,
de-identified (:mod:`dlr.package.deidentify`) and staged with the study's ``study.yaml``, the
settings and seeds of every stage, the inputs' SHA-256s, the environment lock
(:mod:`dlr.package.lock`), a ``MANIFEST.csv`` and a generated ``REPRODUCE.md``; the
analysis recomputed from the staged folder (:mod:`dlr.package.verify`) must equal the run's, and
the zip, written under a temporary name, is searched for any path or original id left before it
is moved into place."""
from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import socket
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dlr.core.csvsafe import write_csv
from dlr.core.errors import InputError
from dlr.core.tempfiles import private_folder
from dlr.core.output import staged_file
from dlr.core.run_folder import OOF_PREDICTIONS, PREDICTIONS, SPLIT
from dlr.package.deidentify import (Scrubber, _aliases, _distinctive, _id_columns, _path_variants, _patient_ids,
                                    _strings, _transform, pseudonyms)
from dlr.package.lock import environment, requirements_lock
from dlr.package.layout import (BINARY_SUFFIXES, MANIFEST, RESULTS, RESULTS_JSON, TEXT_SUFFIXES, ZIP_SUFFIXES,
                                _sha256, analysis_settings)
from dlr.package.verify import VerifyResult, _verify_folder

logger = logging.getLogger(__name__)

PACKAGE_FORMAT = "dlr-package"
PACKAGE_FORMAT_VERSION = 1
#: the run's files and folders that are packaged (features: its tables, not its cache)
RUN_FILES = (SPLIT, PREDICTIONS, OOF_PREDICTIONS, "provenance.json", "run.log")
RUN_FOLDERS = ("features", "models", "clinical", "staging", RESULTS, "report", "stages")
#: never packaged: caches, the stages' memo of absolute paths, the study copy of `dlr demo`
SKIPPED_PARTS = ("cache",)
SKIPPED_FILES = ("stages/file_hashes.json",)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same run gives the same zip bytes


@dataclass(frozen=True)
class PackageResult:
    """The reviewer package written by :func:`package_run`.

    Attributes
    ----------
    path : Path
        The zip file.
    n_files : int
        Members of the zip.
    files : tuple of str
        Their names, sorted (``MANIFEST.csv`` among them).
    pseudonymised : int
        Patients whose ids were replaced by pseudonyms.
    size : int
        Bytes of the zip.
    n_numbers : int
        Numbers recomputed and found equal by the self-verification.
    left_out : tuple of str
        The run's files that were not packaged (caches, model weights, files of unknown type),
        relative to the run folder.
    """

    path: Path
    n_files: int
    files: tuple
    pseudonymised: int
    size: int = 0
    n_numbers: int = 0
    left_out: tuple = ()


# --------------------------------------------------------------------------------------------
# Reading a run


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc}); {what}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object; {what}")
    return value


def _check_run(run: Path) -> dict:
    """``run.json`` of a run folder of this dlr (InputError naming the file otherwise)."""
    from dlr.stages import check_run_folder

    info = None
    if run.is_dir() and (run / "run.json").is_file():
        info = check_run_folder(run, creating=False)  # the format and its version
    elif not run.is_dir():
        raise InputError(f"{run}: no such run folder; give the folder written by `dlr run STUDY --out RUN`")
    if info is None:
        raise InputError(f"{run / 'run.json'}: missing, so {run} is not a run folder of this dlr (a run from an "
                         f"older version, or another folder); make one with `dlr run STUDY --out {run}`")
    return info


def _study_yaml(run: Path) -> Path:
    for candidate in (run / "inputs" / "study.yaml", run / "study" / "study.yaml"):
        if candidate.is_file():
            return candidate
    raise InputError(f"{run / 'inputs' / 'study.yaml'}: missing (the copy of the study's study.yaml that "
                     f"`dlr run` writes); rerun `dlr run STUDY --out {run}`")


def _require(run: Path, rel: str, fix: str) -> Path:
    path = run / rel
    if not path.is_file():
        raise InputError(f"{path}: missing; {fix}")
    return path


def _run_members(run: Path) -> tuple[list, list]:
    """(members to package, what is left out), relative to the run folder, sorted; a skipped
    folder (a cache) is listed once with its number of files."""
    members, left_out, skipped_folders = [], [], {}
    candidates = [run / name for name in RUN_FILES]
    for folder in RUN_FOLDERS:
        if (run / folder).is_dir():
            candidates += sorted(p for p in (run / folder).rglob("*") if p.is_file())
    for path in candidates:
        if not path.is_file():
            continue
        rel = path.relative_to(run).as_posix()
        parts = rel.split("/")
        skipped = next((k for k, p in enumerate(parts[:-1]) if p in SKIPPED_PARTS or p.startswith(".")), None)
        if skipped is not None:
            folder = "/".join(parts[:skipped + 1]) + "/"
            skipped_folders[folder] = skipped_folders.get(folder, 0) + 1
        elif parts[-1].startswith(".") or rel in SKIPPED_FILES or ".tmp" in path.name:
            left_out.append(rel)
        elif path.suffix.lower() in TEXT_SUFFIXES + BINARY_SUFFIXES + ZIP_SUFFIXES:
            members.append(rel)
        else:
            left_out.append(rel)
    left_out += [f"{folder} ({n} file{'s' if n != 1 else ''})" for folder, n in skipped_folders.items()]
    for path in sorted(run.iterdir()):
        rel = path.name
        if path.is_file() and rel not in RUN_FILES and rel != "run.json":
            left_out.append(rel)
        elif path.is_dir() and rel not in (*RUN_FOLDERS, "inputs") and not rel.startswith("."):
            # inputs/: its study.yaml is the package's, its checksums go to checksums.csv
            left_out.append(f"{rel}/")
    return sorted(set(members)), sorted(set(left_out))


# --------------------------------------------------------------------------------------------
# Settings, checksums, REPRODUCE.md


def analyze_command(settings: dict, *, out: str = "results_again") -> str:
    """The `dlr analyze` command line that recomputes the package's results into ``out``."""
    args = ["dlr", "analyze", PREDICTIONS]
    if settings.get("oof"):
        args += ["--oof", OOF_PREDICTIONS]
    args += ["--dev-cohort", str(settings["dev_cohort"])]
    if settings.get("strata"):
        args += ["--strata", *map(str, settings["strata"])]
    if settings.get("reference"):
        args += ["--reference", str(settings["reference"])]
    if settings.get("n_bootstrap") is not None:
        args += ["--bootstrap", str(settings["n_bootstrap"])]
    if settings.get("seed") is not None:
        args += ["--seed", str(settings["seed"])]
    for name, value in settings.items():
        if name not in ("oof", "dev_cohort", "strata", "reference", "n_bootstrap", "seed") and value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return " ".join(shlex.quote(a) for a in [*args, "--out", out, "--no-figures"])


def _provenance_files(run: Path, members) -> dict:
    """``{member: parsed provenance.json}`` of the packaged provenance files."""
    out = {}
    for rel in members:
        if Path(rel).name == "provenance.json":
            try:
                out[rel] = json.loads((run / rel).read_text())
            except (OSError, ValueError):
                continue
    return out


def _checksum_rows(run: Path, study: Path | None, provenance_files: dict, scrub: Scrubber) -> pd.DataFrame:
    """Every input's SHA-256 as recorded: the run's ``inputs/checksums.csv`` (the study's files as
    `dlr run` read them), each provenance record's inputs, and the study folder's own
    provenance files (e.g. a DICOM import's ``images/provenance.json``) when the study is here."""
    rows = []
    table = run / "inputs" / "checksums.csv"
    if table.is_file():
        with open(table, newline="") as handle:
            for record in csv.DictReader(handle):
                rows.append({"file": scrub.name(record.get("file", "")), "sha256": record.get("sha256", ""),
                             "recorded_in": "inputs/checksums.csv", "used_by": ""})

    def add_provenance(document, where: str, prefix: str = ""):
        records = document.get("records") or {}
        artefacts = document.get("artefacts") or {}
        used_by: dict = {}
        for name, entry in artefacts.items():
            used_by.setdefault(entry.get("record"), []).append(name)
            if prefix:  # the study's own files, as their provenance recorded them when written
                rows.append({"file": scrub.name(prefix + name), "sha256": entry.get("sha256") or "",
                             "recorded_in": where, "used_by": ""})
        for key, record in records.items():
            users = ";".join(scrub.name(prefix + n) for n in sorted(used_by.get(key, [])))
            for name, digest in (record.get("inputs") or {}).items():
                rows.append({"file": scrub.name(str(name)), "sha256": digest or "", "recorded_in": where,
                             "used_by": users})

    for rel, document in sorted(provenance_files.items()):
        if isinstance(document, dict):
            add_provenance(document, rel)
    if study is not None and study.is_dir():
        for path in sorted(study.rglob("provenance.json")):
            rel = path.relative_to(study).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            folder = str(Path(rel).parent.as_posix())
            add_provenance(document, f"<study>/{rel}", "" if folder == "." else folder + "/")
    frame = pd.DataFrame(rows, columns=["file", "sha256", "recorded_in", "used_by"])
    return frame.drop_duplicates().reset_index(drop=True)


def _reproduce(*, settings: dict, env: dict, provenance: dict, n_patients: int, members, left_out,
               zip_name: str) -> str:
    git = provenance.get("git_sha") or env["dlr"]["git_sha"] or "unknown"
    modified = provenance.get("git_modified")
    command = analyze_command(settings)
    lines = [
        "# Reproducing this study's numbers",
        "",
        f"This reviewer package was written by `dlr package` (dlr {env['dlr']['version']}). The results in",
        f"`results/` were computed by dlr at git commit `{git}`"
        + (" (with local changes to tracked files)." if modified else "."),
        "",
        "## What is here",
        "",
        "| member | content |",
        "|---|---|",
        "| `study.yaml` | the study: its columns' roles and types, phases, cohorts and settings |",
        "| `split.csv` | each patient's cohort and cross-validation fold |",
        "| `predictions.csv`, `predictions_oof.csv` | every model's score of every patient (contract section 4) |",
        "| `features/` | the radiomics features and the extraction log (when the run had a radiomics arm) |",
        "| `models/`, `clinical/`, `staging/` | fitted parameters, selection and tuning tables; Tables 1, 3; staging |",
        "| `results/` | every statistic of `dlr analyze` (CSVs, `results.json`, figures) |",
        "| `report/` | the rendered report |",
        "| `stages/`, `*/provenance.json` | each stage's input SHA-256s, settings, seed, versions and commit |",
        "| `settings.json` | the run's settings, each stage's, the analysis settings and every seed |",
        "| `checksums.csv` | the SHA-256 of every input as recorded (clinical.csv, images, masks are not packaged) |",
        "| `environment.json`, `requirements-lock.txt` | Python, OS, CPU, GPU, each distribution's exact version |",
        "| `MANIFEST.csv` | every member with its SHA-256 and size |",
        "",
        f"Patients are pseudonymised: the {n_patients} patient ids are replaced by `P0001`, `P0002`, ... in the",
        "sorted order of the original ids, in every file, so rows keep their order and every bootstrap",
        "resample draws the same patients. The mapping is not included. The SHA-256s recorded in the",
        "provenance files and `checksums.csv` are those of the original (identified) files; `MANIFEST.csv`",
        "gives those of the packaged ones. Paths of the machine that made the run are replaced by `<run>`,",
        "`<study>`, `<home>` and `<path>/<name>`.",
        "",
        "## 1. Install the exact versions",
        "",
        "```bash",
        f"python{'.'.join(env['python']['version'].split('.')[:2])} -m venv .venv   "
        f"# Python {env['python']['version']} was used",
        ". .venv/bin/activate",
        "python -m pip install -r requirements-lock.txt",
        f"git clone <the dlr repository> dlr && git -C dlr checkout {git}",
        "python -m pip install --no-deps -e dlr",
        "```",
        "",
        "## 2. Verify the package",
        "",
        "```bash",
        f"dlr verify {shlex.quote(zip_name)}",
        "```",
        "",
        "recomputes the whole analysis from `predictions.csv` with the settings recorded in",
        "`results/results.json` and compares every CSV of `results/` cell by cell and every number of",
        "`results.json`: exit 0 when all are identical, 1 listing each difference as",
        "`file, row, column: packaged -> recomputed` (a member altered since packaging is listed with",
        "column `<sha256>`).",
        "",
        "## 3. Recompute the analysis by hand",
        "",
        "```bash",
        f"unzip {shlex.quote(zip_name)} -d package && cd package",
        command,
        "for f in results/*.csv; do cmp \"$f\" \"results_again/$(basename \"$f\")\"; done",
        "```",
        "",
        "The analysis settings (from `results/results.json`):",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| `{k}` | `{json.dumps(v)}` |" for k, v in settings.items()],
        "",
        "The same input and seed give byte-identical CSVs. Drop `--no-figures` to redraw `results/figures/`.",
        "Refitting the models needs the study's images and clinical table, which are not packaged;",
        "`checksums.csv` lets whoever holds them confirm they are the files this run read.",
        "",
    ]
    if left_out:
        lines += ["## Not packaged", "", "Files of the run left out (caches, model weights, working copies):", ""]
        lines += [f"- `{name}`" for name in left_out[:50]]
        if len(left_out) > 50:
            lines.append(f"- ... and {len(left_out) - 50} more")
        lines.append("")
    return "\n".join(lines)


def _manifest(folder: Path, names) -> pd.DataFrame:
    rows = [{"file": n, "sha256": _sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in sorted(names)]
    return pd.DataFrame(rows, columns=["file", "sha256", "bytes"])


# --------------------------------------------------------------------------------------------
# Packaging


def package_run(run, out_zip) -> PackageResult:
    """Write the reviewer package of a run folder into ``out_zip``.

    Parameters
    ----------
    run : path
        A run folder of this dlr (``RUN/run.json``, written by `dlr run`), analysed
        (``RUN/results/results.json``).
    out_zip : path
        The zip to write; written under a temporary name beside it and moved into place only
        when complete and verified (an earlier file is replaced only then).

    Returns
    -------
    PackageResult

    Raises
    ------
    InputError
        The folder is not a run of this dlr (no ``run.json`` or an older format), a file the
        package needs is missing, or ``results/`` was computed from other predictions than
        ``RUN/predictions.csv`` (or by another version of dlr, and does not recompute).
    RuntimeError
        The self-verification found a difference with the same code, or a path of this machine
        or an original patient id is still in a member (an internal error; nothing is written).
    """
    run, out_zip = Path(run), Path(out_zip)
    info = _check_run(run)
    if out_zip.is_dir():
        raise InputError(f"{out_zip}: is a folder; give the path of the zip to write (e.g. {out_zip / 'package.zip'})")
    study_yaml = _study_yaml(run)
    _require(run, SPLIT, f"rerun `dlr run STUDY --out {run}`")
    predictions = _require(run, PREDICTIONS, f"rerun `dlr run STUDY --out {run}` (or `dlr train`)")
    results_json = _require(run, RESULTS_JSON, f"analyse the run first: `dlr analyze {predictions} --out "
                                               f"{run / RESULTS}` (or `dlr run`)")
    results = _read_json(results_json, f"rerun `dlr analyze {predictions} --out {run / RESULTS}`")
    try:
        settings = analysis_settings(results)
    except InputError as exc:
        raise InputError(str(exc).replace(RESULTS_JSON, str(results_json), 1)) from None
    provenance = results.get("provenance") or {}
    recorded = provenance.get("inputs") or {}
    _check_current(run, predictions, recorded.get("predictions"), "predictions", settings)
    if settings["oof"]:
        oof = _require(run, OOF_PREDICTIONS, f"{results_json} records an analysis with out-of-fold predictions; "
                                             f"rerun `dlr run STUDY --out {run}`")
        _check_current(run, oof, recorded.get("oof_predictions"), "out-of-fold predictions", settings)

    logger.info(f"packaging {run}")
    members, left_out = _run_members(run)
    id_columns = _id_columns(study_yaml)
    study = Path(info["study"]) if info.get("study") else None
    ids = pseudonyms(_patient_ids(run, members, id_columns, study))
    home = Path.home()
    scrub = _scrubber(run, study, home, ids, info, provenance)
    logger.info(f"{len(ids)} patients pseudonymised (P0001, ... in the sorted order of their ids); "
                f"{len(members)} files of the run")

    provenance_files = _provenance_files(run, members)
    staging = private_folder("package")
    try:
        written = []

        def put(name: str, data: bytes) -> None:
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(name)

        put("study.yaml", _transform("study.yaml", study_yaml.read_bytes(), scrub, id_columns))
        for rel in members:
            put(scrub.name(rel), _transform(rel, (run / rel).read_bytes(), scrub, id_columns))
        write_csv(_checksum_rows(run, study, provenance_files, scrub), staging / "checksums.csv")
        written.append("checksums.csv")
        env = environment(provenance.get("versions"))
        put("environment.json", (json.dumps(env, indent=1) + "\n").encode())
        put("requirements-lock.txt", requirements_lock(env).encode())
        put("settings.json", (json.dumps(scrub.json(_settings_document(run, info, settings, results, provenance_files)),
                                         indent=1) + "\n").encode())
        put("REPRODUCE.md", _reproduce(settings=settings, env=env, provenance=provenance, n_patients=len(ids),
                                       members=written, left_out=left_out, zip_name=out_zip.name).encode())
        write_csv(_manifest(staging, written), staging / MANIFEST)
        names = sorted([*written, MANIFEST])

        logger.info("verifying the package: recomputing the analysis from the pseudonymised predictions")
        check = _verify_folder(staging, label=str(out_zip))
        if not check.identical:
            _self_check_failed(check, provenance, results_json)
        logger.info(f"identical: {check.n_numbers} numbers in {len(check.checked)} files")

        with staged_file(out_zip) as tmp:
            _zip_folder(staging, names, tmp)
            _scan_for_leaks(tmp, run=run, study=study, home=home, ids=ids)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = out_zip.stat().st_size
    logger.info(f"wrote {out_zip} ({len(names)} files, {size / 1e6:.1f} MB)")
    return PackageResult(out_zip, len(names), tuple(names), len(ids), size, check.n_numbers, tuple(left_out))


def _scrubber(run: Path, study: Path | None, home: Path, ids: dict, info: dict, provenance: dict) -> "Scrubber":
    """What the package must not carry: the run's, the study's and the home folder's paths (and
    the aliases recorded for them), the host name, and the patients' ids (to pseudonyms)."""
    roots = [(p, "<run>") for p in _path_variants(run)]
    if study is not None:
        roots += [(p, "<study>") for p in _path_variants(study)]
    roots += [(p, "<home>") for p in _path_variants(home)]
    recorded_strings = list(_strings(info)) + list(_strings(provenance))
    aliases = _aliases(run, "<run>", recorded_strings)
    if study is not None:
        aliases += _aliases(study, "<study>", recorded_strings)
    # a name of a folder inside the run or the study is a member's name, not the folder's alias
    aliases = [(a, label) for a, label in aliases
               if not (run / a).exists() and not (study is not None and (study / a).exists())]
    return Scrubber(roots, aliases, ids, socket.gethostname())


def _zip_folder(folder: Path, names: list, path: Path) -> None:
    """The files ``names`` of ``folder`` into the zip ``path``, with fixed member times and
    modes (the same files give the same bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in names:
            member = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, (folder / name).read_bytes())


def _check_current(run: Path, path: Path, recorded: str | None, what: str, settings: dict) -> None:
    """InputError when results.json was computed from another file than ``path``."""
    from dlr.core.output import file_sha256

    if recorded and file_sha256(path) != recorded:
        raise InputError(
            f"{run / RESULTS_JSON}: computed from {what} with SHA-256 {recorded[:12]}..., but {path} is now "
            f"{file_sha256(path)[:12]}... (changed since the analysis); analyse it again: "
            f"`dlr run STUDY --out {run}`, or `{analyze_command(settings, out=str(run / RESULTS))}` in {run}")


def _self_check_failed(check: VerifyResult, provenance: dict, results_json: Path) -> None:
    from dlr.core.output import git_sha, package_versions

    shown = "; ".join(check.lines()[:5])
    more = f" (and {len(check.differences) - 5} more)" if len(check.differences) > 5 else ""
    # with local changes recorded at the time, the code that computed the results is unknown
    same_code = provenance.get("git_sha") == git_sha() and not provenance.get("git_modified") and \
        all(package_versions().get(k) == v for k, v in (provenance.get("versions") or {}).items())
    if not same_code:
        raise InputError(
            f"{results_json}: the analysis does not recompute identically with this dlr (commit {git_sha()}; "
            f"the results were computed at {provenance.get('git_sha')}"
            f"{', with local changes' if provenance.get('git_modified') else ''}, or with other package versions): "
            f"{shown}{more}. "
            "Analyse the run again with this dlr (`dlr run`, or `dlr analyze`), then package it")
    raise RuntimeError(f"the package does not verify: the analysis recomputed from the pseudonymised predictions "
                       f"differs from the run's results: {shown}{more}")


def _settings_document(run: Path, info: dict, settings: dict, results: dict, provenance_files: dict) -> dict:
    """settings.json: the package format, the run's settings, each stage's, the analysis's and every seed."""
    stages = {}
    for path in sorted((run / "stages").glob("*.json")) if (run / "stages").is_dir() else []:
        if path.name == "file_hashes.json":
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            stages[path.stem] = record.get("settings", {})
    recorded = {}
    seeds = {"run": info.get("seed"), "analysis": settings.get("seed")}
    for rel, document in sorted(provenance_files.items()):
        folder = str(Path(rel).parent.as_posix())
        records = (document or {}).get("records") or {}
        for name, entry in sorted(((document or {}).get("artefacts") or {}).items()):
            record = records.get(entry.get("record"), {})
            member = name if folder == "." else f"{folder}/{name}"
            recorded[member] = {"settings": record.get("settings"), "seed": record.get("seed")}
            if record.get("seed") is not None:
                seeds[member] = record.get("seed")
    return {"format": PACKAGE_FORMAT, "format_version": PACKAGE_FORMAT_VERSION,
            "run": {k: v for k, v in info.items()},
            "analysis": settings, "analysis_resolved": results.get("settings"),
            "stages": stages, "artefacts": recorded, "seeds": seeds}


def _scan_for_leaks(zip_path: Path, *, run: Path, study: Path | None, home: Path, ids: dict) -> None:
    """RuntimeError when a member (or a member of a DOCX inside it) holds an absolute path of the
    run, the study or the home folder, or a distinctive original id that is not also a pseudonym."""
    paths = {p for p in _path_variants(run)} | ({p for p in _path_variants(study)} if study else set())
    patterns = [(re.compile(re.escape(p.encode()) + rb"(?![\w.-])"), p) for p in sorted(paths) if len(p) > 1]
    patterns += [(re.compile(re.escape(p.encode()) + rb"(?![\w.-])"), p) for p in _path_variants(home) if len(p) > 1]
    pseudonym_set = set(ids.values())
    leaked_ids = [i for i in ids if _distinctive(i) and i not in pseudonym_set]
    id_pattern = re.compile(rb"(?<![\w-])(" + b"|".join(re.escape(i.encode()) for i in
                                                        sorted(leaked_ids, key=len, reverse=True)) + rb")(?![\w-])") \
        if leaked_ids else None
    problems = []

    def scan(name: str, data: bytes) -> None:
        for pattern, text in patterns:
            if pattern.search(data):
                problems.append(f"{name}: the path {text}")
        if id_pattern is not None and not name.lower().endswith(BINARY_SUFFIXES):
            found = id_pattern.search(data)
            if found:
                problems.append(f"{name}: the patient id {found.group(1).decode(errors='replace')}")

    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            scan(name, name.encode() + b"\n" + data)
            if name.lower().endswith(ZIP_SUFFIXES):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    for inner_name in inner.namelist():
                        scan(f"{name}:{inner_name}", inner.read(inner_name))
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise RuntimeError("the package would not be de-identified, so it was not written: "
                           + "; ".join(problems[:10]) + more)
