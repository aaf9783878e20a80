# Survival reference values from R's survival package (concordance, survfit, survdiff, coxph) and
# pROC's Youden threshold, for tests/test_survival.py; and the real case they are computed on.
#
# Two uses:
#
# 1. Write the real case, from the survival package's own data (run by
#        .venv/bin/python tests/r/make_reference.py --write-cases
#    before the Python case writers):
#        Rscript tests/r/survival.R case tests/r/cases/survival/rotterdam_gbsg_predictions.csv
#
#    Development cohort `rotterdam` (survival::rotterdam, 2,982 patients), external cohort `gbsg`
#    (survival::gbsg, 686 node-positive patients of the German Breast Cancer Study Group).
#    Recurrence-free survival as in the survival package's concordance vignette: for rotterdam
#    the event is recurrence or death (`ifelse(recur == 1, 1, death)`) at the recurrence time if
#    the patient recurred, else at the death or last follow-up time
#    (`ifelse(recur == 1, rtime, dtime)`); for gbsg `rfstime` and `status` (recurrence or
#    death). Times in months (days / (365.25 / 12)), administratively censored at 60 months
#    (5 years): an event after 60 months becomes censored at 60.
#    y_true = 1 when the event happened within 24 months (time <= 24 and event = 1), else 0.
#    Patients censored before 24 months get y_true = 0: the simplest honest coding, used only by
#    the binary statistics (AUC, thresholds); the survival statistics use time and event.
#    Models, one score per patient:
#      LR-2y  logistic model of y_true fitted on rotterdam with glm:
#             y_true ~ age + size + log1p(nodes) + grade + log1p(er) + log1p(pgr)
#             (size the class <=20, 20-50, >50 mm; gbsg's mm sizes cut the same way; grade as a
#             number: gbsg's grade 1, absent from rotterdam, extrapolates); predicted
#             probabilities for both cohorts.
#      NPI    Nottingham Prognostic Index, 0.2 * size (cm) + node stage (1: 0 nodes, 2: 1-3,
#             3: >= 4) + grade, with size taken as the midpoint of its class (1.0, 3.5 and, for
#             > 50 mm, 6.0 cm) in both cohorts, because rotterdam records only the class.
#      Nodes  the number of positive lymph nodes.
#    Columns: patient_id (rotterdam-<pid>, gbsg-<pid>), cohort, model, y_true, y_score,
#    rfs_months, rfs_event (contract section 4 plus the survival columns of section 5.1).
#
# 2. Reference values (run by the driver that regenerates every reference file of tests/r/:
#        .venv/bin/python tests/r/make_reference.py
#    which runs
#        Rscript tests/r/survival.R tests/r/cases/survival/rotterdam_gbsg_predictions.csv \
#            tests/r/cases/survival/rotterdam_gbsg_thresholds.csv \
#            tests/r/cases/survival/ties_predictions.csv tests/r/cases/survival/ties_thresholds.csv \
#            tests/r/survival.csv
#    ). Each pair is a predictions file (columns as above; the first cohort in the file is the
#    development cohort) and the thresholds dlr chose on its development cohort (columns model,
#    threshold; written by tests/test_survival.py::write_r_cases). For every cohort and model,
#    case "<file stem>/<cohort>/<model>", with S = Surv(rfs_months, rfs_event) and
#    high = as.integer(y_score >= threshold):
#      n, n_events, n_high
#      c_index, c_index_se       concordance(S ~ y_score, reverse = TRUE): concordance, sqrt(var)
#      logrank_chi2, logrank_p   survdiff(S ~ high): chisq, pchisq(chisq, 1, lower.tail = FALSE)
#      hr, hr_ci_low, hr_ci_high, hr_p
#                                summary(coxph(S ~ high)) (ties = "efron"): conf.int[1, c(1, 3, 4)],
#                                coefficients[1, 5]
#      km_<group>_<field>_<t>    summary(survfit(S ~ high), times = t) (conf.type = "log"), group
#                                high/low, field surv/lower/upper/n.risk, t = 6, 12, 24, 36, 48
#      cuminc_<group>, cuminc_<group>_ci_low, cuminc_<group>_ci_high
#                                1 - surv, 1 - upper, 1 - lower at t = 24
#    and for the development cohort, proc_threshold: pROC's Youden threshold
#    (coords(roc(y_true, y_score, direction = "<", levels = c(0, 1)), "best",
#    best.method = "youden"), the row with the highest sensitivity on ties).
# RESULTS.csv is long form (case, key, value; 17 significant digits, see long_form.R).

suppressPackageStartupMessages({
  library(survival)
  library(pROC)
})

args <- commandArgs(trailingOnly = TRUE)
HORIZON <- 24
KM_TIMES <- c(6, 12, 24, 36, 48)
MONTH <- 365.25 / 12

number <- function(x) {
  # 17 significant digits, integral doubles keep ".0" (read back as floats, as the Python cases)
  text <- sprintf("%.17g", x)
  ifelse(grepl("[.en]", text), text, paste0(text, ".0"))
}

write_case <- function(path) {
  r <- survival::rotterdam
  g <- survival::gbsg
  size_levels <- levels(r$size)  # "<=20", "20-50", ">50"
  cohort <- function(name, pid, age, size, nodes, grade, er, pgr, time, event) {
    event5 <- as.integer(event == 1 & time <= 60)
    time5 <- pmin(time, 60)
    data.frame(patient_id = paste0(name, "-", pid), cohort = name, age = age,
               size = factor(size, levels = size_levels), nodes = nodes, grade = grade, er = er, pgr = pgr,
               rfs_months = time5, rfs_event = event5,
               y_true = as.integer(event5 == 1 & time5 <= 24), stringsAsFactors = FALSE)
  }
  dev <- with(r, cohort("rotterdam", pid, age, as.character(size), nodes, grade, er, pgr,
                        ifelse(recur == 1, rtime, dtime) / MONTH, ifelse(recur == 1, 1, death)))
  ext <- with(g, cohort("gbsg", pid, age,
                        as.character(cut(size, c(-Inf, 20, 50, Inf), labels = size_levels)),
                        nodes, grade, er, pgr, rfstime / MONTH, status))
  fit <- glm(y_true ~ age + size + log1p(nodes) + grade + log1p(er) + log1p(pgr), family = binomial,
             data = dev, control = glm.control(epsilon = 1e-14, maxit = 100))
  both <- rbind(dev, ext)
  size_cm <- c(1.0, 3.5, 6.0)[as.integer(both$size)]
  node_stage <- ifelse(both$nodes == 0, 1, ifelse(both$nodes <= 3, 2, 3))
  scores <- list("LR-2y" = unname(predict(fit, newdata = both, type = "response")),
                 "NPI" = 0.2 * size_cm + node_stage + both$grade,
                 "Nodes" = as.numeric(both$nodes))
  rows <- do.call(rbind, lapply(names(scores), function(m) {
    data.frame(patient_id = both$patient_id, cohort = both$cohort, model = m, y_true = both$y_true,
               y_score = number(scores[[m]]), rfs_months = number(both$rfs_months),
               rfs_event = both$rfs_event, stringsAsFactors = FALSE)
  }))
  dir.create(dirname(path), showWarnings = FALSE, recursive = TRUE)
  write.csv(rows, path, row.names = FALSE, quote = FALSE)
}

if (length(args) == 2 && args[1] == "case") {
  write_case(args[2])
  quit(save = "no")
}
if (length(args) < 3 || length(args) %% 2 != 1) {
  stop("usage: Rscript survival.R case OUT.csv | Rscript survival.R PRED.csv THR.csv [PRED.csv THR.csv ...] RESULTS.csv")
}

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))

at_times <- function(fit, stratum, times) {
  # summary(survfit, times) of one stratum; times past the stratum's last time are NA
  s <- summary(fit[stratum], times = times, extend = TRUE)
  keep <- times <= max(fit[stratum]$time)
  list(surv = ifelse(keep, s$surv, NA), lower = ifelse(keep, s$lower, NA), upper = ifelse(keep, s$upper, NA),
       n.risk = ifelse(keep, s$n.risk, NA))
}

pairs <- matrix(args[-length(args)], ncol = 2, byrow = TRUE)
for (k in seq_len(nrow(pairs))) {
  p <- read.csv(pairs[k, 1], stringsAsFactors = FALSE)
  thresholds <- read.csv(pairs[k, 2], stringsAsFactors = FALSE)
  stem <- sub("_predictions\\.csv$", "", basename(pairs[k, 1]))
  dev_cohort <- p$cohort[1]
  for (co in unique(p$cohort)) {
    for (m in unique(p$model)) {
      d <- p[p$cohort == co & p$model == m, ]
      if (nrow(d) == 0) next
      case <- paste(stem, co, m, sep = "/")
      thr <- thresholds$threshold[thresholds$model == m]
      d$high <- as.integer(d$y_score >= thr)
      put(case, "n", nrow(d))
      put(case, "n_events", sum(d$rfs_event))
      put(case, "n_high", sum(d$high))

      cc <- concordance(Surv(rfs_months, rfs_event) ~ y_score, data = d, reverse = TRUE)
      put(case, "c_index", cc$concordance)
      put(case, "c_index_se", sqrt(cc$var))

      sd <- survdiff(Surv(rfs_months, rfs_event) ~ high, data = d)
      put(case, "logrank_chi2", sd$chisq)
      put(case, "logrank_p", pchisq(sd$chisq, 1, lower.tail = FALSE))

      cx <- summary(coxph(Surv(rfs_months, rfs_event) ~ high, data = d))
      put(case, "hr", cx$conf.int[1, 1])
      put(case, "hr_ci_low", cx$conf.int[1, 3])
      put(case, "hr_ci_high", cx$conf.int[1, 4])
      put(case, "hr_p", cx$coefficients[1, 5])

      fit <- survfit(Surv(rfs_months, rfs_event) ~ high, data = d)
      for (group in c("high", "low")) {
        stratum <- if (group == "high") "high=1" else "high=0"
        km <- at_times(fit, stratum, KM_TIMES)
        for (field in c("surv", "lower", "upper", "n.risk")) {
          for (i in seq_along(KM_TIMES)) {
            put(case, sprintf("km_%s_%s_%g", group, sub(".", "_", field, fixed = TRUE), KM_TIMES[i]), km[[field]][i])
          }
        }
        h <- at_times(fit, stratum, HORIZON)
        put(case, paste0("cuminc_", group), 1 - h$surv)
        put(case, paste0("cuminc_", group, "_ci_low"), 1 - h$upper)
        put(case, paste0("cuminc_", group, "_ci_high"), 1 - h$lower)
      }

      if (co == dev_cohort) {
        r <- roc(d$y_true, d$y_score, direction = "<", levels = c(0, 1), quiet = TRUE)
        best <- coords(r, "best", best.method = "youden", ret = c("threshold", "sensitivity"), transpose = FALSE)
        put(case, "proc_threshold", best$threshold[which.max(best$sensitivity)])
      }
    }
  }
}
write_rows(args[length(args)])
