"""The math of clsreg: binning, paired statistics and the balanced-vs-imbalanced gap (no torch)."""
