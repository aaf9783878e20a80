# Reference values from R (pROC, stats, rms) for tests/test_r_reference.py.
#
# Regenerate every reference file of tests/r/ (this one included) with
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/reference.R tests/r/cases/reference/manifest.csv tests/r/reference_values.csv
#
# MANIFEST.csv has columns case, kind, file (file relative to the manifest's folder); each
# file is a CSV of one generated case (written by tests/test_r_reference.py::write_r_cases):
#   kind auc, youden      : columns y, s
#   kind paired           : columns y, a, b   (two models scored on the same patients)
#   kind unpaired         : columns cohort ("a" or "b"), y, s
#   kind calibration      : columns y, p      (predicted probabilities; also rms::val.prob)
#   kind proportions      : columns x, n      (Wilson intervals, prop.test without correction)
#   kind holm             : column p          (p.adjust(p, "holm"))
#   kind logistic         : columns y, s
# RESULTS.csv is written in long form with columns case, key, value; values are printed
# with 17 significant digits so that doubles round-trip. Base R, stats, pROC and rms are used.
#
# Every ROC curve is built with direction = "<" (controls < cases) and levels = c(0, 1), so
# pROC never flips a curve whose cases score lower than its controls.

suppressPackageStartupMessages(library(pROC))
if (!requireNamespace("rms", quietly = TRUE)) stop("R package rms is required (rms::val.prob)")

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript reference.R MANIFEST.csv RESULTS.csv")
manifest <- read.csv(args[1], stringsAsFactors = FALSE)
case_dir <- dirname(args[1])

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))

curve <- function(y, s) roc(y, s, direction = "<", levels = c(0, 1), quiet = TRUE)

for (i in seq_len(nrow(manifest))) {
  case <- manifest$case[i]
  kind <- manifest$kind[i]
  d <- read.csv(file.path(case_dir, manifest$file[i]), stringsAsFactors = FALSE)

  if (kind == "auc") {
    r <- curve(d$y, d$s)
    ci <- ci.auc(r, method = "delong")
    put(case, "auc", auc(r))
    put(case, "se", sqrt(var(r, method = "delong")))
    put(case, "ci_low", ci[1])
    put(case, "ci_high", ci[3])
    put(case, "n_cases", length(r$cases))
    put(case, "n_controls", length(r$controls))

  } else if (kind == "paired") {
    r1 <- curve(d$y, d$a)
    r2 <- curve(d$y, d$b)
    t <- roc.test(r1, r2, method = "delong", paired = TRUE)
    put(case, "auc_a", t$estimate[1])
    put(case, "auc_b", t$estimate[2])
    put(case, "statistic", t$statistic)
    put(case, "p_value", t$p.value)
    put(case, "ci_low", t$conf.int[1])
    put(case, "ci_high", t$conf.int[2])

  } else if (kind == "unpaired") {
    a <- d[d$cohort == "a", ]
    b <- d[d$cohort == "b", ]
    r1 <- curve(a$y, a$s)
    r2 <- curve(b$y, b$s)
    t <- roc.test(r1, r2, method = "delong", paired = FALSE)
    put(case, "auc_a", t$estimate[1])
    put(case, "auc_b", t$estimate[2])
    put(case, "statistic", t$statistic)
    put(case, "df", t$parameter)
    put(case, "p_value", t$p.value)

  } else if (kind == "youden") {
    r <- curve(d$y, d$s)
    best <- coords(r, "best", best.method = "youden",
                   ret = c("threshold", "sensitivity", "specificity"), transpose = FALSE)
    # several rows on exact ties in J: take the one with the highest sensitivity
    k <- which.max(best$sensitivity)
    put(case, "n_best", nrow(best))
    put(case, "threshold", best$threshold[k])
    put(case, "sensitivity", best$sensitivity[k])
    put(case, "specificity", best$specificity[k])

  } else if (kind == "calibration") {
    lp <- qlogis(d$p)
    put(case, "intercept", coef(glm(d$y ~ offset(lp), family = binomial))[1])
    put(case, "slope", coef(glm(d$y ~ lp, family = binomial))[2])
    v <- rms::val.prob(d$p, d$y, pl = FALSE)
    put(case, "rms_brier", v[["Brier"]])
    put(case, "rms_slope", v[["Slope"]])

  } else if (kind == "proportions") {
    for (j in seq_len(nrow(d))) {
      ci <- prop.test(d$x[j], d$n[j], correct = FALSE)$conf.int
      put(case, paste0("low_", j), ci[1])
      put(case, paste0("high_", j), ci[2])
    }

  } else if (kind == "holm") {
    adj <- p.adjust(d$p, method = "holm")
    for (i in seq_along(adj)) put(case, paste0("adj_", i), adj[i])

  } else if (kind == "logistic") {
    fit <- glm(y ~ s, family = binomial, data = d)
    put(case, "intercept", coef(fit)[1])
    put(case, "slope", coef(fit)[2])

  } else {
    stop(sprintf("unknown kind '%s' for case '%s'", kind, case))
  }
}

write_rows(args[2])
