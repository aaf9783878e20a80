"""The base layer both stages stand on; it imports neither `modeling` nor `analysis`.

- `errors`: `InputError` (exit status 2) and `UndefinedStatisticWarning` (NaN, not a crash).
- `stats/`: the statistical primitives several stages need: `logistic` (maximum-likelihood
  fit), `group_tests` (the methods.md E rule: chi-squared / Fisher, t test / Mann-Whitney,
  scalar and batched), `agreement` (Cohen's kappa, ICC), `roc` (rank AUC, Youden threshold).
- `tables`: reading a CSV named on the command line, clinical column parsing, cut points.
- `output`: staged output (temporary path, moved into place only when complete) and the
  provenance written beside every artefact; `tempfiles` (temporary folders a killed process
  cannot leave behind for long), `lock` (one writer per run folder), `archive` (zips from
  strangers read within limits), `progress` (logging), `parallel` (the process pool),
  `run_folder` (the run folder's paths, names and readers).

`modeling/` and `analysis/` import from here and meet otherwise only through the files of
the contract (spec/contract.md).
"""
