# Shared by the reference scripts of tests/r/: results collected in long form (case, key,
# value) and written as CSV with 17 significant digits, so that doubles round-trip.
# Each script sources it from its own folder:
#     source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))

rows <- list()
put <- function(case, key, value) {
  value <- as.numeric(value)
  rows[[length(rows) + 1]] <<- data.frame(
    case = case, key = key,
    value = ifelse(is.na(value), "NA", sprintf("%.17g", value)),
    stringsAsFactors = FALSE
  )
}
write_rows <- function(path) write.csv(do.call(rbind, rows), path, row.names = FALSE, quote = TRUE)
