# Reference values from base R (stats: glm, chisq.test, fisher.test, t.test, wilcox.test) for
# tests/test_tables.py.
#
# Regenerate every reference file of tests/r/ (this one included) with
#     .venv/bin/python tests/r/make_reference.py
# which runs
#     Rscript tests/r/base_tests.R tests/r/cases/base_tests_data.csv tests/r/base_tests.csv
#
# DATA.csv : columns age, stage (I, II, III), noise, y (0/1): 200 generated patients.
# RESULTS.csv is written in long form with columns case, key, value (17 significant digits):
#   case glm_age, glm_stageII, glm_stageIII, glm_noise : keys or, ci_low, ci_high, p_value
#   case chisq_stage, t_age, wilcox_noise             : keys statistic, p_value
#   case fisher_2x4                                    : key p_value

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript base_tests.R DATA.csv RESULTS.csv")

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "long_form.R"))

d <- read.csv(args[1], stringsAsFactors = TRUE)

# Wald odds ratios, CIs and p-values of a multivariable logistic regression
fit <- glm(y ~ age + stage + noise, family = binomial, data = d, control = glm.control(epsilon = 1e-14))
b <- coef(summary(fit))[-1, ]
ci <- confint.default(fit)[-1, ]
for (term in rownames(b)) {
  key <- paste0("glm_", term)
  put(key, "or", exp(b[term, 1]))
  put(key, "ci_low", exp(ci[term, 1]))
  put(key, "ci_high", exp(ci[term, 2]))
  put(key, "p_value", b[term, 4])
}

# Pearson chi-squared test of stage by outcome (3 x 2, no continuity correction for r x c)
ct <- chisq.test(table(d$stage, d$y))
put("chisq_stage", "statistic", ct$statistic)
put("chisq_stage", "p_value", ct$p.value)

# Fisher's exact test on a literal 2 x 4 table with small counts
small <- matrix(c(4, 0, 3, 1, 2, 5, 1, 6), 2)
put("fisher_2x4", "p_value", fisher.test(small)$p.value)

# Welch t-test of age by outcome
tt <- t.test(d$age[d$y == 0], d$age[d$y == 1])
put("t_age", "statistic", tt$statistic)
put("t_age", "p_value", tt$p.value)

# Wilcoxon rank-sum test (exact p-value: no ties, 30 and 40 values)
w <- wilcox.test(d$noise[d$y == 0][1:30], d$noise[d$y == 1][1:40])
put("wilcox_noise", "statistic", w$statistic)
put("wilcox_noise", "p_value", w$p.value)

write_rows(args[2])
