# Reference values from R psych (cohen.kappa, ICC) for tests/test_agreement.py.
#
# Regenerate every reference file of tests/r/ (this one included) with
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/psych_agreement.R tests/r/cases/psych_kappa_readers.csv \
#         tests/r/cases/psych_icc_ratings.csv tests/r/psych_agreement.csv
#
# KAPPA.csv : columns a, b   (two readers' categorical ratings of the same patients)
# ICC.csv   : columns r1, r2 (two raters' continuous measurements of the same subjects)
# RESULTS.csv is written in long form with columns case, key, value (17 significant digits):
#   case kappa                                   : keys kappa, var_kappa
#   case ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k   : keys icc, lower, upper (F-based 95% CI)

suppressPackageStartupMessages(library(psych))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript psych_agreement.R KAPPA.csv ICC.csv RESULTS.csv")

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))

k <- read.csv(args[1], stringsAsFactors = FALSE)
x <- read.csv(args[2])

lv <- sort(unique(c(k$a, k$b)))
ck <- cohen.kappa(cbind(factor(k$a, lv), factor(k$b, lv)))
put("kappa", "kappa", ck$kappa)
put("kappa", "var_kappa", ck$var.kappa)

ic <- ICC(x, lmer = FALSE)$results
for (i in seq_len(nrow(ic))) {
  put(ic$type[i], "icc", ic$ICC[i])
  put(ic$type[i], "lower", ic$`lower bound`[i])
  put(ic$type[i], "upper", ic$`upper bound`[i])
}

write_rows(args[3])
