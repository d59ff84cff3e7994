"""Methods: what a model minimizes, one value each, in one registry.

A :class:`Method` is a regression loss, an optional class head (number of classes, binning,
λ and the classification loss) and an optional per-sample weighting of the regression term.
Its objective is

    reg(prediction, target)                       without a class head,
    λ · reg(prediction, target) + cls(logits, labels)   with one,

where ``reg`` is the (weighted) mean of the loss's per-sample terms and ``cls`` is averaged
over the samples whose label is not ``-1`` (the class-balancing mask ignores those). Every
leading dimension is a separate model: a population passes ``(P, B)`` predictions and
``(P, B, C)`` logits and gets P losses back, each the loss that model would get alone.

The population engine needs only the objective's gradient with respect to the regression
output and the logits. A loss may give it by hand (``gradient`` / ``logit_gradient``: the
engine's fast path); without one the engine takes it by autograd on those output tensors,
so a new loss is one entry here plus its test against the autograd reference.

:data:`METHODS` is the registry: the engine, the reference, real-data training, the CLI's
choices and the reports all look methods up here. A grid or an experiment fills in the class
head's C, binning and λ with :meth:`Method.configured`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
from clsreg.analysis.binning import IGNORE_LABEL, assign_labels, uniform_edges
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.validate import check_choice, check_int, check_number
from clsreg.analysis.vocabulary import BASELINE_METHOD, BINNINGS, METHOD_ALIASES
from scipy.ndimage import gaussian_filter1d
from torch.nn import functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class RegressionLoss:
    """A regression loss: the mean of ``per_sample(prediction − target)`` over samples.

    ``per_sample`` maps errors to loss terms and must work on torch tensors and on numpy
    arrays alike (operators, ``abs``, ``**``), so that model selection scores predictions
    with the same formula in numpy. ``gradient(prediction, target, scale, weights)``, when
    given, returns ``d(scale · loss)/d prediction`` by hand, in place on a fresh tensor.
    """

    name: str
    per_sample: Callable
    gradient: Callable[[Tensor, Tensor, Tensor | float, Tensor | None], Tensor] | None = None
    # A loss that couples the samples of a batch (Balanced MSE) gives its per-model value
    # here; ``per_sample`` then only scores predictions (model selection, reports).
    batch_value: Callable[[Tensor, Tensor], Tensor] | None = None

    def value(self, prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
        """The loss per model (mean over the last dimension), optionally weighted."""
        if self.batch_value is not None:
            if weights is not None:
                raise ConfigError(f"the {self.name} loss takes no per-sample weights")
            return self.batch_value(prediction, target)
        terms = self.per_sample(prediction - target)
        if weights is not None:
            terms = terms * weights
        return terms.mean(dim=-1)

    def output_gradient(self, prediction: Tensor, target: Tensor, scale: Tensor | float,
                        weights: Tensor | None = None) -> Tensor:
        """``d(scale · loss)/d prediction``: by hand if the loss has it, else by autograd."""
        if self.gradient is not None:
            return self.gradient(prediction, target, scale, weights)
        leaf = prediction.detach().requires_grad_(True)
        with torch.enable_grad():
            total = (scale * self.value(leaf, target, weights).unsqueeze(-1)).sum()
            (grad,) = torch.autograd.grad(total, leaf)
        return grad

    def score(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """The unweighted loss of float64 numpy predictions (model selection, reports)."""
        error = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
        return float(np.mean(self.per_sample(error)))


def _mse_gradient(prediction: Tensor, target: Tensor, scale: Tensor | float,
                  weights: Tensor | None) -> Tensor:
    grad = (prediction - target).mul_((2.0 / target.shape[-1]) * scale)
    return grad if weights is None else grad.mul_(weights)


def squared(error):
    return error ** 2


HUBER_DELTA = 1.0


def huber(error):
    """Huber's loss (δ = 1 training-target unit): quadratic within δ, linear beyond; written
    with ``abs`` only, so it works on numpy arrays and torch tensors alike."""
    size = abs(error)
    inner = (size + HUBER_DELTA - abs(size - HUBER_DELTA)) / 2  # min(|e|, δ)
    return 0.5 * inner ** 2 + HUBER_DELTA * (size - inner)


# Balanced MSE's noise scale, fixed (not learned), in training-target units: in the 1D study
# (raw targets, range ≈ 3) it is ≈ 8% of the range, close to the theory's default σ; on real
# data (standardized targets) a quarter of the target's standard deviation.
BMC_SIGMA = 0.25


def balanced_mse(prediction: Tensor, target: Tensor, sigma: float = BMC_SIGMA) -> Tensor:
    """Balanced MSE, batch Monte Carlo (Ren et al., CVPR 2022): for each sample, the
    cross-entropy of "which batch target is mine" under Gaussian likelihoods of scale σ,
    times 2σ² (so that it has MSE's scale). Every leading dimension is a model."""
    logits = -(prediction.unsqueeze(-1) - target.unsqueeze(-2)) ** 2 / (2 * sigma ** 2)
    own = torch.diagonal(logits, dim1=-2, dim2=-1)
    return (torch.logsumexp(logits, dim=-1) - own).mean(dim=-1) * (2 * sigma ** 2)


MSE = RegressionLoss("mse", per_sample=squared, gradient=_mse_gradient)
L1 = RegressionLoss("l1", per_sample=abs)
HUBER = RegressionLoss("huber", per_sample=huber)
# Scored (model selection, reports) by MSE: BMC estimates the balanced MSE.
BMC = RegressionLoss("bmc", per_sample=squared, batch_value=balanced_mse)
REGRESSION_LOSSES = {loss.name: loss for loss in (MSE, L1, HUBER)}


@dataclass(frozen=True)
class ClassificationLoss:
    """A loss on class logits, averaged per model over the non-ignored samples.

    ``logit_gradient(logits, labels)``, when given, overwrites ``logits`` (``(P, B, C)``) in
    place with ``G`` and returns a per-row scale ``s`` (``(P, B, 1)``) such that the gradient
    of the loss is ``s · G``: the engine applies ``s`` to the small operands instead of the
    ``B × C`` logits.
    """

    name: str
    value: Callable[[Tensor, Tensor], Tensor]
    logit_gradient: Callable[[Tensor, Tensor], Tensor] | None = None

    def gradient_in_place(self, logits: Tensor, labels: Tensor) -> Tensor | None:
        """Overwrite ``logits`` with the loss's gradient (up to the returned row scale)."""
        if self.logit_gradient is not None:
            return self.logit_gradient(logits, labels)
        leaf = logits.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.value(leaf, labels).sum(), leaf)
        logits.copy_(grad)
        return None


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy averaged over the non-ignored samples of each model (0 if none)."""
    num_classes = logits.shape[-1]
    labels = labels.expand(logits.shape[:-1])
    valid = labels != IGNORE_LABEL
    per_sample = F.cross_entropy(
        logits.reshape(-1, num_classes), labels.clamp(min=0).reshape(-1), reduction="none"
    ).reshape(labels.shape)
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return per_sample.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


def _cross_entropy_gradient(logits: Tensor, labels: Tensor) -> Tensor:
    """``softmax − onehot`` on valid rows (0 on ignored ones) in place; scale ``1/n_valid``.

    The softmax is written over its own input (each row is reduced before it is
    overwritten), so the ``B × C`` logits are never copied.
    """
    valid = labels != IGNORE_LABEL
    dtype = logits.dtype
    scale = (valid.to(dtype) / valid.sum(dim=1, keepdim=True).clamp(min=1)).unsqueeze(2)
    torch.softmax(logits, dim=2, out=logits)
    logits.scatter_add_(2, labels.clamp(min=0).unsqueeze(2), -valid.to(dtype).unsqueeze(2))
    return scale


CROSS_ENTROPY = ClassificationLoss("ce", value=cross_entropy,
                                   logit_gradient=_cross_entropy_gradient)

# HL-Gauss's smoothing, in bin widths: σ/ζ = 0.75 (Farebrother et al., ICML 2024).
HL_GAUSS_SIGMA_BINS = 0.75


def hl_gauss_targets(num_classes: int, sigma_bins: float = HL_GAUSS_SIGMA_BINS) -> np.ndarray:
    """Row ``l``: a Gaussian of scale ``sigma_bins`` centred on bin ``l``'s centre,
    integrated over each of the ``num_classes`` bins and renormalized to the range."""
    from scipy.stats import norm

    edges = np.arange(num_classes + 1, dtype=np.float64)
    centres = edges[:-1] + 0.5
    mass = np.diff(norm.cdf((edges[None, :] - centres[:, None]) / sigma_bins), axis=1)
    return mass / mass.sum(axis=1, keepdims=True)


def hl_gauss(logits: Tensor, labels: Tensor) -> Tensor:
    """HL-Gauss (Imani & White 2018; Farebrother et al. 2024): cross-entropy against the
    Gaussian-smoothed histogram of the target, averaged over the non-ignored samples. The
    Gaussian is centred on the target's *bin centre* (the engine passes class labels, not
    targets): exact for targets at bin centres, off by at most half a bin otherwise.
    No library is used: ``hl-gauss-pytorch`` smooths single-model continuous targets, and
    this loss must take a population's ``(P, B, C)`` logits and labels."""
    num_classes = logits.shape[-1]
    labels = labels.expand(logits.shape[:-1])
    valid = labels != IGNORE_LABEL
    table = torch.as_tensor(hl_gauss_targets(num_classes), dtype=logits.dtype,
                            device=logits.device)
    per_sample = -(table[labels.clamp(min=0)] * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return per_sample.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


HL_GAUSS = ClassificationLoss("hl_gauss", value=hl_gauss)
CLASSIFICATION_LOSSES = {loss.name: loss for loss in (CROSS_ENTROPY, HL_GAUSS)}


@dataclass(frozen=True)
class Weighting:
    """Per-sample weights of the regression term, from the training targets alone."""

    name: str
    weights: Callable[[np.ndarray], np.ndarray]


LDS_BINS = 100
LDS_KERNEL_SIGMA = 2.0
LDS_KERNEL_SIZE = 5


def lds_weights(targets: np.ndarray) -> np.ndarray:
    """Label-distribution-smoothing weights (Yang et al., ICML 2021): the inverse of the
    training-target histogram (100 bins) smoothed by a Gaussian kernel (σ = 2 bins, 5 bins
    wide), normalized to mean 1, so rare targets weigh more."""
    labels = assign_labels(targets, uniform_edges(targets, LDS_BINS))
    counts = np.bincount(labels, minlength=LDS_BINS).astype(np.float64)
    smoothed = gaussian_filter1d(counts, LDS_KERNEL_SIGMA, mode="constant",
                                 truncate=(LDS_KERNEL_SIZE // 2) / LDS_KERNEL_SIGMA)
    weights = 1.0 / smoothed[labels]
    return weights / weights.mean()


LDS = Weighting("lds", lds_weights)


@dataclass(frozen=True)
class ClassHead:
    """A linear class head on the regression features and what it is trained with."""

    num_classes: int = 16
    binning: str = "uniform"
    lam: float = 1.0
    loss: ClassificationLoss = CROSS_ENTROPY

    def __post_init__(self) -> None:
        check_int("number of classes", self.num_classes, 2)
        check_choice("binning", self.binning, BINNINGS)
        check_number("lambda", self.lam, positive=True)


@dataclass(frozen=True)
class Method:
    """What one model is trained to minimize (see the module docstring)."""

    name: str
    regression: RegressionLoss = MSE
    head: ClassHead | None = None
    weighting: Weighting | None = None
    description: str = ""
    # λ on the regression term of a method *without* a class head (None: not scaled): the
    # λ·MSE-alone control, reg+cls's loss scale (and so its share of coupled L2) minus the CE.
    loss_scale: float | None = None
    # Predict with the class head, ``softmax(logits) · bin centres``, and train the class
    # loss alone (HL-Gauss): the regression head is neither trained nor used.
    predicts_from_classes: bool = False

    def __post_init__(self) -> None:
        if self.predicts_from_classes and self.head is None:
            raise ConfigError(f"method {self.name!r} predicts from classes but has no head")
        if self.predicts_from_classes and self.head.binning != "uniform":
            raise ConfigError(f"method {self.name!r} predicts the expected bin centre and "
                              "needs uniform bins, not equal-frequency ones")

    @property
    def scales_regression(self) -> bool:
        """Whether the regression term carries a λ (a class head, or a loss scale)."""
        return self.head is not None or self.loss_scale is not None

    @property
    def lam(self) -> float:
        """The λ on the regression term (1.0 when there is none)."""
        if self.head is not None:
            return self.head.lam
        return 1.0 if self.loss_scale is None else self.loss_scale

    @property
    def num_classes(self) -> int:
        """Classes of the class head (0: no head)."""
        return self.head.num_classes if self.head is not None else 0

    def check_classes(self, num_classes: int) -> None:
        """Refuse a model whose class head does not have this method's class count."""
        if self.num_classes != num_classes:
            raise ConfigError(f"method {self.name!r} has {self.num_classes} classes but the "
                              f"architecture {num_classes}")

    def configured(self, num_classes: int | None = None, binning: str | None = None,
                   lam: float | None = None, regression: str | None = None) -> Method:
        """This method with the class head's C, binning and λ (and the regression loss) set.

        Settings that do not apply are ignored: a class count for a method without a head, a
        regression loss for a method whose loss is its own (anything but MSE).
        """
        method = self
        if regression is not None and self.regression is MSE:
            method = replace(method, regression=REGRESSION_LOSSES[
                check_choice("regression loss", regression, REGRESSION_LOSSES)])
        if method.head is not None:
            head = method.head
            head = replace(head, num_classes=head.num_classes if num_classes is None
                           else num_classes,
                           binning=head.binning if binning is None else binning,
                           lam=head.lam if lam is None else lam)
            method = replace(method, head=head)
        elif method.loss_scale is not None and lam is not None:
            method = replace(method, loss_scale=check_number("lambda", lam, positive=True))
        return method

    def objective(self, prediction: Tensor, target: Tensor, logits: Tensor | None,
                  labels: Tensor | None, lam: float | Tensor | None = None,
                  weights: Tensor | None = None) -> Tensor:
        """The per-model loss: ``reg``, ``λ·reg`` (a loss scale) or ``λ·reg + cls`` (λ
        defaults to the method's)."""
        reg = self.regression.value(prediction, target, weights)
        if self.predicts_from_classes:
            # The unused regression head rides along at weight 0: it gets a zero gradient
            # (and so, like every weight, the optimizer's decay), as in the population engine.
            return self.head.loss.value(logits, labels) + 0.0 * reg
        if not self.scales_regression:
            return reg
        lam = self.lam if lam is None else lam
        if self.head is None:
            return lam * reg
        return lam * reg + self.head.loss.value(logits, labels)

    @staticmethod
    def class_prediction(logits: Tensor, centres: Tensor) -> Tensor:
        """The class head's prediction: the expected bin centre, ``softmax(logits) · c``."""
        return (torch.softmax(logits, dim=-1) * centres.unsqueeze(-2)).sum(dim=-1)

    def describe(self) -> str:
        """One line: the objective in words."""
        if self.predicts_from_classes:
            return (f"{self.head.loss.name} over {self.head.num_classes} {self.head.binning} "
                    "classes; prediction = expected bin centre")
        text = self.regression.name
        if self.weighting is not None:
            text = f"{self.weighting.name}-weighted {text}"
        if self.head is not None:
            text = (f"λ·{text} + {self.head.loss.name} over {self.head.num_classes} "
                    f"{self.head.binning} classes (λ = {self.head.lam:g})")
        elif self.loss_scale is not None:
            text = f"λ·{text} (λ = {self.loss_scale:g})"
        return text


METHODS: dict[str, Method] = {
    method.name: method for method in (
        Method("reg", description="plain regression: the baseline"),
        Method("regcls", head=ClassHead(),
               description="regression plus cross-entropy over binned targets (the study)"),
        Method("lamreg", loss_scale=1.0,
               description="control: λ·MSE alone, reg+cls's loss scale without the "
                           "cross-entropy (λ as the grid's; with coupled L2 it is λ-fold "
                           "less regularized than reg, like reg+cls)"),
        Method("lds", weighting=LDS,
               description="MSE re-weighted by inverse smoothed label density (LDS, Yang et "
                           "al. 2021)"),
        Method("bmc", regression=BMC,
               description=f"Balanced MSE, batch Monte Carlo, noise σ fixed at {BMC_SIGMA:g} "
                           "training-target units (Ren et al. 2022)"),
        Method("regcls_lds", head=ClassHead(), weighting=LDS,
               description="reg+cls with the LDS-weighted MSE: do the two add up?"),
        Method("regcls_bmc", regression=BMC, head=ClassHead(),
               description="reg+cls with Balanced MSE as its regression term"),
        Method("hlgauss", head=ClassHead(loss=HL_GAUSS), predicts_from_classes=True,
               description=f"HL-Gauss: CE against a Gaussian-smoothed (σ = "
                           f"{HL_GAUSS_SIGMA_BINS:g} bins) histogram target, prediction = "
                           "expected bin centre (Imani & White 2018)"),
        Method("l1", regression=L1, description="plain regression with the L1 loss"),
        Method("huber", regression=HUBER,
               description=f"plain regression with Huber's loss (δ = {HUBER_DELTA:g})"),
    )
}
assert BASELINE_METHOD in METHODS


def format_methods(methods: Iterable[Method]) -> str:
    """A table of methods: name, objective and what it is for."""
    from tabulate import tabulate

    return tabulate([(m.name, m.describe(), m.description) for m in methods],
                    headers=["method", "objective (defaults)", "what it is"])


def get_method(name: str) -> Method:
    """The registered method ``name`` (old spellings accepted)."""
    name = METHOD_ALIASES.get(name, name)
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


def parse_methods(value: str | Iterable[str]) -> tuple[str, ...]:
    """Method names from a comma-separated string or a list: known, distinct, non-empty."""
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [METHOD_ALIASES.get(n.strip(), n.strip()) for n in names if n.strip()]
    if not names:
        raise ConfigError(f"no method given; choose from {', '.join(METHODS)}")
    for name in names:
        get_method(name)
    return tuple(dict.fromkeys(names))
