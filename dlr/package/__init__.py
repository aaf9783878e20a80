"""The reviewer package of a run (contract section 7): `dlr package RUN --out FILE.zip`, `dlr verify FILE.zip`.

A package is one zip that lets a reviewer check every number of a study without its patients'
data. It holds the study's ``study.yaml``, the split, the settings and seeds of every stage, the
environment (``environment.json``, ``requirements-lock.txt``), the SHA-256 of every input
(``checksums.csv``; the files themselves are not packaged), the de-identified features and
predictions, the models' tables, the results (CSVs, ``results.json``, figures), the report, a
``MANIFEST.csv`` (every member with its SHA-256) and a generated ``REPRODUCE.md``.

De-identification
    Patient ids are replaced by pseudonyms ``P0001``, ``P0002``, ... assigned in the sorted
    order of the original ids (as strings, the order in which the analysis sorts them), so
    every table keeps its row order and every bootstrap resample draws the same patients: the
    analysis recomputed from the package is identical to the run's. The same pseudonym replaces
    a patient in every file: the ``patient_id`` column (and study.yaml's ``id_column``) of each
    CSV, the keys of JSON mappings over patients (``models/parameters.json`` folds) and, for
    ids that cannot be mistaken for a number (at least 3 characters, not numeric), any
    whole-word occurrence in text, JSON strings and file names. The mapping is not packaged;
    nor is ``clinical.csv``, an image or a mask (their SHA-256s are). No DICOM header field
    reaches a run (``modeling.dicom``), so none reaches the package.
Paths
    The run and study folders, the home folder and the host name are replaced by ``<run>``,
    ``<study>``, ``<home>`` and ``<host>`` in every text member (CSV, JSON, YAML, log, HTML,
    SVG, Markdown and the XML inside a DOCX), including the names by which they were given on
    the command line; any other absolute path becomes ``<path>/<its last name>``. Afterwards
    every member is searched for the absolute paths of the run, the study and the home folder
    and for the original ids; one found is an internal error and no package is written.
Self-verification
    Before the zip is written, the analysis is recomputed from the pseudonymised predictions
    with the settings and seed that ``results/results.json`` records (:func:`verify_package`'s
    check, on the staged folder) and must equal the run's results number for number. The zip is
    written under a temporary name beside ``FILE.zip`` and moved into place only then.

:func:`verify_package` opens a package, checks each member against ``MANIFEST.csv``,
recomputes the analysis into a temporary folder and compares every CSV of ``results/`` cell by
cell (numbers exactly, NaN equal to NaN; text equal) and every numeric leaf of
``results.json`` outside its provenance, listing each difference by file, row and column.

The modules:

- :mod:`.make`: :func:`package_run` (`dlr package`): reading the run, staging its members, the
  settings document, ``REPRODUCE.md``, the self-verification, the zip and the search for leaks.
- :mod:`.verify`: :func:`verify_package` (`dlr verify`): the members against ``MANIFEST.csv``
  and the analysis recomputed.
- :mod:`.compare`: :func:`compare_csv` and :func:`compare_json`, each difference by file, row
  and column.
- :mod:`.deidentify`: :class:`Scrubber` (paths, host name and ids in every type of member),
  :func:`pseudonyms` and the patients' ids of a run.
- :mod:`.lock`: the environment lock, :func:`environment` and :func:`requirements_lock`.
- :mod:`.layout`: what making and verifying share: the members' names, the types of file
  packaged, :func:`analysis_settings` and a member's SHA-256.
"""
from __future__ import annotations

from dlr.package.compare import compare_csv, compare_json
from dlr.package.deidentify import Scrubber, pseudonyms
from dlr.package.lock import distributions, environment, requirements_lock
from dlr.package.layout import analysis_settings
from dlr.package.make import PackageResult, analyze_command, package_run
from dlr.package.verify import VerifyResult, verify_package

__all__ = ["PackageResult", "VerifyResult", "package_run", "verify_package", "pseudonyms", "Scrubber",
           "analysis_settings", "analyze_command", "compare_csv", "compare_json", "environment", "requirements_lock",
           "distributions"]
