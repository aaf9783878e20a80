"""Defaults shared by the library and the command line; importing this module loads nothing else."""

#: stratified bootstrap resamples per cohort (methods.md section A)
DEFAULT_BOOTSTRAP = 2000
#: seed of the bootstrap when none is given
DEFAULT_SEED = 20240101
