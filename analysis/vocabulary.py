"""The package's shared names: choices and constants used by more than one layer.

Every other module imports these; none redeclares them. Changing a name here changes it for
the engine, the reports, the real-data code and the command line alike.
"""

from __future__ import annotations

# The 1D protocol (PROTOCOL.md §2).
SETTINGS = ("clean", "noisy", "ood")
SAMPLINGS = ("uniform", "mild", "moderate", "severe")
# Settings where training and test differ only in the target marginal (the theory's label
# shift); OOD splits x by interval and is outside the theory.
LABEL_SHIFT_SETTINGS = ("clean", "noisy")
CLASS_COUNTS = (4, 16, 64, 256, 1024)
# How 1D datasets are drawn: our cleaned-up protocol (disjoint OOD intervals, N = 60,000) or
# the study's released generator exactly (docs/fidelity.md lists every difference).
PROTOCOLS = ("clsreg", "released")

# Classes over binned targets: uniform-width or equal-frequency (class-balanced) bins.
BINNINGS = ("uniform", "equal")

# Weight decay per run: as given ("none"), or multiplied by the run's λ on the regression
# term ("lambda"), so that λ·MSE + CE gets the decay per unit of MSE that plain MSE gets.
DECAY_SCALINGS = ("none", "lambda")

# Training.
# adamw: Adam with decoupled weight decay, which does not scale with the loss (a control for
# the coupled L2 that λ·MSE + CE dilutes λ-fold).
OPTIMIZERS = ("adam", "sgd", "adamw")
DTYPES = ("float32", "float64")
# "auto" picks CUDA when present; "cuda:N" names one GPU.
DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N"
# Where a sweep's populations train (simulate.executors): this process, or Ray tasks.
EXECUTORS = ("local", "ray")

# Methods: the baseline every other method is compared against, and the default pair.
BASELINE_METHOD = "reg"
DEFAULT_METHODS = ("reg", "regcls")
# Stores written before the method registry spelled reg+cls as "reg+cls" in real data.
METHOD_ALIASES = {"reg+cls": "regcls"}

# Row kinds of the results store.
SIM_KIND = "sim1d"
REAL_KIND = "realdata"

# The theory's default predictive scale σ as a fraction of the target range: the median
# relative test RMSE of the protocol's plain MLP on clean uniform data (docs/theory.md).
DEFAULT_SIGMA_FRACTION = 0.075
# ``theory predict``'s grids (the protocol's every dataset, or a small slice) and what
# ``theory check`` compares the predictions with (reg's excess MSE, or a method's gain).
THEORY_PRESETS = ("paper", "small")
THEORY_TARGETS = ("excess", "gain")

# Report columns shared by the 1D and real-data reports. ``p_seed``: the paired t-test over
# the per-seed metrics (the seed is the replicate), ``p_seed_holm`` its Holm adjustment.
# Real data adds ``p_sample``: the Wilcoxon test over the paired test samples (another unit
# than the 1D's pairs), ``p_sample_holm`` its Holm adjustment.
P_SEED = "p_seed"
P_SEED_HOLM = "p_seed_holm"
P_SAMPLE = "p_sample"
P_SAMPLE_HOLM = "p_sample_holm"
# The TOST equivalence p against ± the margin (a fraction of the baseline's mean; issue 22's
# default 5%), its Holm adjustment, and the per-pair Wilcoxon p of the 1D reports (pairs of a
# seed share its draw: a secondary column, never the unit of a claim).
DEFAULT_MARGIN = 0.05
P_EQUIV = "p_equiv"
P_EQUIV_HOLM = "p_equiv_holm"
P_PAIR = "p_pair"
P_PAIR_HOLM = "p_pair_holm"
