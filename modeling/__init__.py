"""The modeling stage: a study folder (contract section 2) in, features, fitted models and
`RUN/predictions.csv` (sections 3 and 4) out.

Everything fitted sees the development cohort only (methods.md G). It never imports `analysis`;
what it shares with `analysis` is in `core`. Entries: `study.load_study`, `synthetic`,
`dicom`, `radiomics.extraction.extract_study`, `staging.compute_staging`,
`cr_factors.select_cr_factors`, `train.train_study`.
"""
