"""clsreg: when and why a classification loss over binned targets helps deep regression.

Installed, the repository is this one import package: ``clsreg.analysis`` (the math, no
torch), ``clsreg.core`` (the shared training core), ``clsreg.simulate`` (the 1D study),
``clsreg.realdata`` (real data), ``clsreg.paper_figures`` and ``clsreg.cli``.
"""
