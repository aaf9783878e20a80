"""The analysis stage: a predictions file (contract section 4) in, every statistic, table and
figure of `dlr analyze` out (section 5), plus Table 1 of a clinical CSV (section 6).

It reads files and never imports `modeling`; what it shares with `modeling` (errors, logistic
fit, group tests, rank AUC and Youden threshold, table reading, staged output) is in `core`.
`pipeline.analyze` is the entry; `output.write_analysis` writes the results folder.
"""
