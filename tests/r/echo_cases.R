# Reads case CSV files as the reference scripts do (read.csv) and writes back what R parsed,
# numbers with 17 significant digits, so that tests/r/make_reference.py can check that R
# reads exactly the doubles that the Python tests read from the same files.
#
# Run by the driver that regenerates every reference file of tests/r/:
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/echo_cases.R OUT_DIR CASE_1.csv CASE_2.csv ...
# and writes OUT_DIR/1.csv, OUT_DIR/2.csv, ... (one per input, in order).

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) stop("usage: Rscript echo_cases.R OUT_DIR CASE.csv ...")

files <- args[-1]
for (i in seq_along(files)) {
  d <- read.csv(files[i], stringsAsFactors = FALSE)
  for (col in names(d)) {
    if (is.numeric(d[[col]])) d[[col]] <- ifelse(is.na(d[[col]]), "NA", sprintf("%.17g", d[[col]]))
  }
  write.csv(d, file.path(args[1], paste0(i, ".csv")), row.names = FALSE, quote = TRUE)
}
