"""dlr: deep-learning radiomics studies and their statistical validation.

One import root over the repository's folders (pyproject's ``package-dir``): ``dlr.core`` (core/,
the base), ``dlr.modeling`` (modeling/, study -> predictions), ``dlr.analysis`` (analysis/,
predictions -> statistics), ``dlr.report`` (report/, saved results -> documents) and, in this
folder, the top floor: ``verbs`` (one library function per stage verb), ``settings`` (one
resolution of a run's settings), ``runner`` and ``stages`` (`dlr run`), ``codebase`` (the
package's import graph and the code fingerprint of a stage), ``package`` (the reviewer package)
and ``cli`` (the command line). Each floor imports only the floors below it.
"""
