# Writes the R, BLAS/LAPACK and package versions that make the reference files of tests/r/.
#
# Run by the driver that regenerates every reference file of tests/r/:
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/versions.R tests/r/versions.txt
#
# A package that cannot be loaded is written as "MISSING"; the driver then stops.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript versions.R VERSIONS.txt")

version_of <- function(p) {
  if (requireNamespace(p, quietly = TRUE)) as.character(packageVersion(p)) else "MISSING"
}
lines <- c(
  "# R and package versions that made the reference files in this folder (tests/r/versions.R)",
  paste0("R: ", R.version.string),
  paste0("platform: ", R.version$platform),
  paste0("BLAS: ", extSoftVersion()[["BLAS"]]),
  paste0("LAPACK: ", La_version()),
  paste0("pROC: ", version_of("pROC")),
  paste0("rms: ", version_of("rms")),
  paste0("psych: ", version_of("psych")),
  paste0("survival: ", version_of("survival"))
)
writeLines(lines, args[1])
