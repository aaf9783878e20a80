# Reference values from rms (validate.lrm, nomogram) for tests/test_internal_validation.py and
# tests/test_nomogram.py: Harrell's optimism-corrected bootstrap of a logistic model, on rms's own
# resamples and on the resamples our code drew, and the nomogram of a logistic model.
#
# Regenerate every reference file of tests/r/ (this one included) with
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/internal_validation.R tests/r/cases/internal_validation/data.csv \
#         tests/r/cases/internal_validation/resamples.csv tests/r/internal_validation.csv
#
# DATA.csv      : columns x1, x2 (continuous), x3 (0/1), g (factor a, b, c), y (0/1): 200 generated patients.
# RESAMPLES.csv : column resample (1..200), then r1..r200: the 1-based rows of each bootstrap
#                 resample, drawn by modeling.internal_validation.draw_resamples(200, 200, seed=2024).
# RESULTS.csv is written in long form with columns case, key, value (17 significant digits):
#   case validate_rms_seed   : validate(fit, B = 200) after set.seed(20240513): rms's own resamples
#   case validate_our_resamples : the same validate.lrm code run on RESAMPLES (below)
#     keys <index>:<column>, index in Dxy, R2, Intercept, Slope, Emax, D, U, Q, B, g, gp and
#     column in index.orig, training, test, optimism, index.corrected, n
#   case lrm_coef            : keys Intercept, x1, x2, x3 of lrm(y ~ x1 + x2 + x3)
#   case nomogram            : nomogram(lrm(y ~ x1 + x2 + x3 + g), fun = plogis): keys
#     <variable>:x:<i>, <variable>:points:<i> (the i-th axis value and its points; a factor's
#     x is the level's position, 1 = a), sc, Intercept (lp at 0 total points), total:<i>,
#     lp:x:<i> and lp:points:<i>, fun:p:<i> and fun:points:<i> (rms's positions, found with
#     approx() on a 1000-point grid) and fun:exact:<i> ((qlogis(p) - Intercept) * sc), and the
#     model's coefficients coef:<name>
#   case selection_data      : keys univariate_p:<v>, multivariate_p:<v> of the CR selection by hand
#                              (glm Wald p, a factor's terms jointly) for v in x1, x2, x3, g
#   case selection_resamples : keys resample:<b>: the variables it selects on resample b, as a bit
#                              mask (x1 = 1, x2 = 2, x3 = 4, g = 8)
#   case pretty_<k>          : keys lo, hi and v:<i> = pretty(c(lo, hi), n = 10)[i]
#
# validate on our resamples: rms's predab.resample draws each resample with
# sample(n, replace = TRUE); copies of validate.lrm and predab.resample are given an environment
# (child of rms's namespace) where `sample` returns the next row of RESAMPLES instead, so that
# rms's own code, unchanged, computes every index on exactly our resamples.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript internal_validation.R DATA.csv RESAMPLES.csv RESULTS.csv")

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))
suppressPackageStartupMessages(library(rms))

d <- read.csv(args[1], stringsAsFactors = TRUE)
resamples <- as.matrix(read.csv(args[2])[, -1])
stopifnot(ncol(resamples) == nrow(d))

put_validate <- function(case, v) {
  for (index in rownames(v)) for (column in colnames(v)) put(case, paste0(index, ":", column), v[index, column])
}

fit <- lrm(y ~ x1 + x2 + x3, data = d, x = TRUE, y = TRUE)
for (name in names(coef(fit))) put("lrm_coef", name, coef(fit)[[name]])

# rms's own resamples
set.seed(20240513)
put_validate("validate_rms_seed", validate(fit, B = 200))

# the same code on our resamples
env <- new.env(parent = asNamespace("rms"))
env$drawn <- 0L
env$sample <- function(x, size, replace = FALSE, prob = NULL) {
  stopifnot(length(x) == 1, x == nrow(resamples), replace)
  drawn <<- drawn + 1L
  resamples[drawn, ]
}
environment(env$sample) <- env
env$predab.resample <- rms:::predab.resample
environment(env$predab.resample) <- env
validate_on_ours <- rms:::validate.lrm
environment(validate_on_ours) <- env
v <- validate_on_ours(fit, B = nrow(resamples))
stopifnot(env$drawn == nrow(resamples))
put_validate("validate_our_resamples", v)

# nomogram
dd <- datadist(d)
options(datadist = "dd")
fit_n <- lrm(y ~ x1 + x2 + x3 + g, data = d, x = TRUE, y = TRUE)
for (name in names(coef(fit_n))) put("nomogram", paste0("coef:", name), coef(fit_n)[[name]])
nom <- nomogram(fit_n, fun = plogis, funlabel = "Risk")
info <- attr(nom, "info")
put("nomogram", "sc", info$sc)
put("nomogram", "Intercept", info$Intercept)
for (variable in c("x1", "x2", "x3", "g")) {
  axis <- nom[[variable]]
  x <- axis[[variable]]
  if (is.character(x) || is.factor(x)) x <- match(as.character(x), levels(d$g))
  for (i in seq_along(x)) {
    put("nomogram", paste0(variable, ":x:", i), x[i])
    put("nomogram", paste0(variable, ":points:", i), axis$points[i])
  }
}
total <- nom[["total.points"]]$x
for (i in seq_along(total)) put("nomogram", paste0("total:", i), total[i])
lp <- nom[["lp"]]
for (i in seq_along(lp$x)) {
  put("nomogram", paste0("lp:x:", i), lp$x.real[i])
  put("nomogram", paste0("lp:points:", i), lp$x[i])
}
risk <- nom[["Risk"]]
for (i in seq_along(risk$x)) {
  put("nomogram", paste0("fun:p:", i), risk$x.real[i])
  put("nomogram", paste0("fun:points:", i), risk$x[i])
  put("nomogram", paste0("fun:exact:", i), (qlogis(risk$x.real[i]) - info$Intercept) * info$sc)
}

# the CR model's two-step selection (modeling/cr_factors.py) by hand with glm: univariate Wald p <
# 0.05, then multivariate Wald p < 0.05 (a factor's terms jointly, chi-squared with their df), on
# the data and on each of our resamples
wald_p <- function(fit, variable) {
  terms <- grep(paste0("^", variable), names(coef(fit)), value = TRUE)
  b <- coef(fit)[terms]
  stat <- drop(t(b) %*% solve(vcov(fit)[terms, terms, drop = FALSE]) %*% b)
  pchisq(stat, df = length(terms), lower.tail = FALSE)
}
candidates <- c("x1", "x2", "x3", "g")
tight <- glm.control(epsilon = 1e-14, maxit = 100)  # glm's default 1e-8 moves small p-values in their 4th digit
select <- function(dd, record = NULL) {
  uni <- sapply(candidates, function(v) wald_p(glm(reformulate(v, "y"), binomial, dd, control = tight), v))
  entered <- candidates[uni < 0.05]
  multi <- setNames(rep(NA, length(candidates)), candidates)
  if (length(entered)) {
    fit <- glm(reformulate(entered, "y"), binomial, dd, control = tight)
    multi[entered] <- sapply(entered, function(v) wald_p(fit, v))
  }
  if (!is.null(record)) for (v in candidates) {
    put(record, paste0("univariate_p:", v), uni[[v]])
    put(record, paste0("multivariate_p:", v), multi[[v]])
  }
  candidates[!is.na(multi) & multi < 0.05]
}
invisible(select(d, record = "selection_data"))
for (b in seq_len(nrow(resamples))) {
  chosen <- select(d[resamples[b, ], ])
  # the selected set as a bit mask: x1 = 1, x2 = 2, x3 = 4, g = 8
  put("selection_resamples", paste0("resample:", b), sum(2^(match(chosen, candidates) - 1)))
}

# R's pretty(), which rms uses for every axis
ranges <- list(c(0.3, 9.7), c(-2.37, 3.14), c(0.0123, 0.0987), c(17, 254), c(-0.5, -0.1), c(0.001, 0.999),
               c(5, 5), c(0, 0), c(-3.2, 117), c(0.7, 1.3))
for (k in seq_along(ranges)) {
  r <- ranges[[k]]
  case <- paste0("pretty_", k)
  put(case, "lo", r[1])
  put(case, "hi", r[2])
  v <- pretty(r, n = 10)
  for (i in seq_along(v)) put(case, paste0("v:", i), v[i])
}

write_rows(args[3])
