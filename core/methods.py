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

A method's constants (Huber's δ, Balanced MSE's σ, HL-Gauss's σ, the LDS kernel) live in its
value: each loss and weighting carries its ``params``, and ``with_params`` gives another value.
They are part of what a stored run *is*: :func:`method_identity` names a registered method by
its bare name while its constants are those it had when the committed stores were written
(:data:`LEGACY_CONSTANTS`) and as ``name@<hash of its constants>`` otherwise, so a run with
other constants is trained anew instead of being read from a store as the old method's.
"""

from __future__ import annotations

import hashlib
import json
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
# A loss's or weighting's constants: (name, value) pairs, sorted by name (frozen, hashable).
Params = tuple[tuple[str, float], ...]


def _with_params(component, values: dict):
    """``component`` (a loss or weighting) with some of its constants replaced; a constant it
    does not have, or a value that is not a positive number (an integer where the constant
    is one), is a :class:`ConfigError`."""
    current = dict(component.params)
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise ConfigError(f"{component.name} has no constant {', '.join(unknown)}; its "
                          f"constants are {', '.join(current) or 'none'}")
    for key, value in values.items():
        label = f"{component.name} {key}"
        current[key] = (check_int(label, value, 1) if isinstance(current[key], int)
                        else check_number(label, value, positive=True))
    return replace(component, params=tuple(sorted(current.items())))


@dataclass(frozen=True)
class RegressionLoss:
    """A regression loss: the mean of ``terms(prediction − target, **params)`` over samples.

    ``terms`` maps errors to loss terms and must work on torch tensors and on numpy arrays
    alike (operators, ``abs``, ``**``), so that model selection scores predictions with the
    same formula in numpy. ``gradient(prediction, target, scale, weights, **params)``, when
    given, returns ``d(scale · loss)/d prediction`` by hand, in place on a fresh tensor.
    ``params`` are the loss's constants (Huber's δ, Balanced MSE's σ): every function here
    gets them as keyword arguments.
    """

    name: str
    terms: Callable
    gradient: Callable[..., Tensor] | None = None
    # A loss that couples the samples of a batch (Balanced MSE) gives its per-model value
    # here, ``batch_value(prediction, target, **params)``; ``terms`` then only scores
    # predictions (model selection, reports) and takes no constants.
    batch_value: Callable[..., Tensor] | None = None
    params: Params = ()

    def with_params(self, **values: float) -> RegressionLoss:
        """This loss with other constants (only those it has)."""
        return _with_params(self, values)

    def per_sample(self, error):
        """The loss terms of ``error`` (tensor or array) under this loss's constants (a batch
        loss's scoring terms take none)."""
        if self.batch_value is not None:
            return self.terms(error)
        return self.terms(error, **dict(self.params))

    def value(self, prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
        """The loss per model (mean over the last dimension), optionally weighted."""
        if self.batch_value is not None:
            if weights is not None:
                raise ConfigError(f"the {self.name} loss takes no per-sample weights")
            return self.batch_value(prediction, target, **dict(self.params))
        terms = self.per_sample(prediction - target)
        if weights is not None:
            terms = terms * weights
        return terms.mean(dim=-1)

    def output_gradient(self, prediction: Tensor, target: Tensor, scale: Tensor | float,
                        weights: Tensor | None = None) -> Tensor:
        """``d(scale · loss)/d prediction``: by hand if the loss has it, else by autograd."""
        if self.gradient is not None:
            return self.gradient(prediction, target, scale, weights, **dict(self.params))
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


def absolute(error):
    return abs(error)


def huber(error, delta: float):
    """Huber's loss (δ in training-target units): quadratic within δ, linear beyond; written
    with ``abs`` only, so it works on numpy arrays and torch tensors alike."""
    size = abs(error)
    inner = (size + delta - abs(size - delta)) / 2  # min(|e|, δ)
    return 0.5 * inner ** 2 + delta * (size - inner)


def balanced_mse(prediction: Tensor, target: Tensor, sigma: float) -> Tensor:
    """Balanced MSE, batch Monte Carlo (Ren et al., CVPR 2022): for each sample, the
    cross-entropy of "which batch target is mine" under Gaussian likelihoods of scale σ,
    times 2σ² (so that it has MSE's scale). Every leading dimension is a model."""
    logits = -(prediction.unsqueeze(-1) - target.unsqueeze(-2)) ** 2 / (2 * sigma ** 2)
    own = torch.diagonal(logits, dim1=-2, dim2=-1)
    return (torch.logsumexp(logits, dim=-1) - own).mean(dim=-1) * (2 * sigma ** 2)


MSE = RegressionLoss("mse", terms=squared, gradient=_mse_gradient)
L1 = RegressionLoss("l1", terms=absolute)
# δ = 1 training-target unit.
HUBER = RegressionLoss("huber", terms=huber, params=(("delta", 1.0),))
# Balanced MSE's noise scale σ, fixed (not learned), in training-target units: in the 1D
# study (raw targets, range ≈ 3) it is ≈ 8% of the range, close to the theory's default σ;
# on real data (standardized targets) a quarter of the target's standard deviation.
# Scored (model selection, reports) by MSE: BMC estimates the balanced MSE.
BMC = RegressionLoss("bmc", terms=squared, batch_value=balanced_mse, params=(("sigma", 0.25),))
REGRESSION_LOSSES = {loss.name: loss for loss in (MSE, L1, HUBER)}


@dataclass(frozen=True)
class ClassificationLoss:
    """A loss on class logits, averaged per model over the non-ignored samples.

    ``logit_gradient(logits, labels)``, when given, overwrites ``logits`` (``(P, B, C)``) in
    place with ``G`` and returns a per-row scale ``s`` (``(P, B, 1)``) such that the gradient
    of the loss is ``s · G``: the engine applies ``s`` to the small operands instead of the
    ``B × C`` logits. ``params`` are the loss's constants (HL-Gauss's σ): ``function`` and
    ``logit_gradient`` get them as keyword arguments.
    """

    name: str
    function: Callable[..., Tensor]
    logit_gradient: Callable[..., Tensor] | None = None
    params: Params = ()

    def with_params(self, **values: float) -> ClassificationLoss:
        """This loss with other constants (only those it has)."""
        return _with_params(self, values)

    def value(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The loss per model under this loss's constants."""
        return self.function(logits, labels, **dict(self.params))

    def gradient_in_place(self, logits: Tensor, labels: Tensor) -> Tensor | None:
        """Overwrite ``logits`` with the loss's gradient (up to the returned row scale)."""
        if self.logit_gradient is not None:
            return self.logit_gradient(logits, labels, **dict(self.params))
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


CROSS_ENTROPY = ClassificationLoss("ce", function=cross_entropy,
                                   logit_gradient=_cross_entropy_gradient)


def hl_gauss_targets(num_classes: int, sigma_bins: float) -> np.ndarray:
    """Row ``l``: a Gaussian of scale ``sigma_bins`` centred on bin ``l``'s centre,
    integrated over each of the ``num_classes`` bins and renormalized to the range."""
    from scipy.stats import norm

    edges = np.arange(num_classes + 1, dtype=np.float64)
    centres = edges[:-1] + 0.5
    mass = np.diff(norm.cdf((edges[None, :] - centres[:, None]) / sigma_bins), axis=1)
    return mass / mass.sum(axis=1, keepdims=True)


def hl_gauss(logits: Tensor, labels: Tensor, sigma_bins: float) -> Tensor:
    """HL-Gauss (Imani & White 2018; Farebrother et al. 2024): cross-entropy against the
    Gaussian-smoothed histogram of the target, averaged over the non-ignored samples. The
    Gaussian (scale ``sigma_bins`` bin widths) is centred on the target's *bin centre*
    (the engine passes class labels, not targets): exact for targets at bin centres, off by
    at most half a bin otherwise.
    No library is used: ``hl-gauss-pytorch`` smooths single-model continuous targets, and
    this loss must take a population's ``(P, B, C)`` logits and labels."""
    num_classes = logits.shape[-1]
    labels = labels.expand(logits.shape[:-1])
    valid = labels != IGNORE_LABEL
    table = torch.as_tensor(hl_gauss_targets(num_classes, sigma_bins), dtype=logits.dtype,
                            device=logits.device)
    per_sample = -(table[labels.clamp(min=0)] * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return per_sample.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


# HL-Gauss's smoothing, in bin widths: σ/ζ = 0.75 (Farebrother et al., ICML 2024).
HL_GAUSS = ClassificationLoss("hl_gauss", function=hl_gauss, params=(("sigma_bins", 0.75),))
CLASSIFICATION_LOSSES = {loss.name: loss for loss in (CROSS_ENTROPY, HL_GAUSS)}


@dataclass(frozen=True)
class Weighting:
    """Per-sample weights of the regression term, from the training targets alone:
    ``function(targets, **params)``, ``params`` the weighting's constants."""

    name: str
    function: Callable[..., np.ndarray]
    params: Params = ()

    def with_params(self, **values: float) -> Weighting:
        """This weighting with other constants (only those it has)."""
        return _with_params(self, values)

    def weights(self, targets: np.ndarray) -> np.ndarray:
        """The weight of each training sample under this weighting's constants."""
        return self.function(targets, **dict(self.params))


def lds_weights(targets: np.ndarray, bins: int, kernel_sigma: float,
                kernel_size: int) -> np.ndarray:
    """Label-distribution-smoothing weights (Yang et al., ICML 2021): the inverse of the
    training-target histogram (``bins`` bins) smoothed by a Gaussian kernel (σ =
    ``kernel_sigma`` bins, ``kernel_size`` bins wide), normalized to mean 1, so rare targets
    weigh more."""
    labels = assign_labels(targets, uniform_edges(targets, bins))
    counts = np.bincount(labels, minlength=bins).astype(np.float64)
    smoothed = gaussian_filter1d(counts, kernel_sigma, mode="constant",
                                 truncate=(kernel_size // 2) / kernel_sigma)
    weights = 1.0 / smoothed[labels]
    return weights / weights.mean()


# Yang et al.'s defaults: 100 bins, a Gaussian kernel of σ = 2 bins, 5 bins wide.
LDS = Weighting("lds", lds_weights,
                params=(("bins", 100), ("kernel_sigma", 2.0), ("kernel_size", 5)))


def _label(component) -> str:
    """A loss's or weighting's name with its constants, e.g. ``huber(delta=1)``."""
    if not component.params:
        return component.name
    return f"{component.name}({', '.join(f'{k}={v:g}' for k, v in component.params)})"


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

    def with_params(self, regression: dict | None = None, weighting: dict | None = None,
                    classification: dict | None = None) -> Method:
        """This method with other constants of its regression loss, weighting or class-head
        loss, e.g. ``METHODS["huber"].with_params(regression={"delta": 2.0})``: another
        value, and so (registered under its name) another stored identity."""
        method = self
        if regression:
            method = replace(method, regression=method.regression.with_params(**regression))
        if weighting:
            if method.weighting is None:
                raise ConfigError(f"method {self.name!r} has no weighting")
            method = replace(method, weighting=method.weighting.with_params(**weighting))
        if classification:
            if method.head is None:
                raise ConfigError(f"method {self.name!r} has no class head")
            method = replace(method, head=replace(
                method.head, loss=method.head.loss.with_params(**classification)))
        return method

    def constants(self) -> dict:
        """Every constant that changes what this method trains, as plain JSON values."""
        head, weighting = self.head, self.weighting
        return {
            "regression": self.regression.name,
            "regression_params": dict(self.regression.params),
            "weighting": None if weighting is None else weighting.name,
            "weighting_params": {} if weighting is None else dict(weighting.params),
            "head_loss": None if head is None else head.loss.name,
            "head_loss_params": {} if head is None else dict(head.loss.params),
            "num_classes": self.num_classes,
            "binning": None if head is None else head.binning,
            "lam": None if head is None else head.lam,
            "loss_scale": self.loss_scale,
            "predicts_from_classes": self.predicts_from_classes,
        }

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
        """One line: the objective in words, with the losses' constants."""
        if self.predicts_from_classes:
            return (f"{_label(self.head.loss)} over {self.head.num_classes} "
                    f"{self.head.binning} classes; prediction = expected bin centre")
        text = _label(self.regression)
        if self.weighting is not None:
            text = f"{_label(self.weighting)}-weighted {text}"
        if self.head is not None:
            text = (f"λ·{text} + {_label(self.head.loss)} over {self.head.num_classes} "
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
               description=f"Balanced MSE, batch Monte Carlo, noise σ fixed at "
                           f"{dict(BMC.params)['sigma']:g} training-target units (Ren et al. "
                           "2022)"),
        Method("regcls_lds", head=ClassHead(), weighting=LDS,
               description="reg+cls with the LDS-weighted MSE: do the two add up?"),
        Method("regcls_bmc", regression=BMC, head=ClassHead(),
               description="reg+cls with Balanced MSE as its regression term"),
        Method("hlgauss", head=ClassHead(loss=HL_GAUSS), predicts_from_classes=True,
               description=f"HL-Gauss: CE against a Gaussian-smoothed (σ = "
                           f"{dict(HL_GAUSS.params)['sigma_bins']:g} bins) histogram target, "
                           "prediction = "
                           "expected bin centre (Imani & White 2018)"),
        Method("l1", regression=L1, description="plain regression with the L1 loss"),
        Method("huber", regression=HUBER,
               description=f"plain regression with Huber's loss (δ = "
                           f"{dict(HUBER.params)['delta']:g})"),
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


# The registered methods' constants when the committed stores were written, kept literally:
# a registered method with exactly these constants is stored under its bare name, as then.
_PLAIN = {"regression": "mse", "regression_params": {}, "weighting": None,
          "weighting_params": {}, "head_loss": None, "head_loss_params": {}, "num_classes": 0,
          "binning": None, "lam": None, "loss_scale": None, "predicts_from_classes": False}
_CE_HEAD = {"head_loss": "ce", "num_classes": 16, "binning": "uniform", "lam": 1.0}
_LDS = {"weighting": "lds", "weighting_params": {"bins": 100, "kernel_sigma": 2.0,
                                                 "kernel_size": 5}}
_BMC = {"regression": "bmc", "regression_params": {"sigma": 0.25}}
LEGACY_CONSTANTS: dict[str, dict] = {
    "reg": _PLAIN,
    "regcls": {**_PLAIN, **_CE_HEAD},
    "lamreg": {**_PLAIN, "loss_scale": 1.0},
    "lds": {**_PLAIN, **_LDS},
    "bmc": {**_PLAIN, **_BMC},
    "regcls_lds": {**_PLAIN, **_CE_HEAD, **_LDS},
    "regcls_bmc": {**_PLAIN, **_CE_HEAD, **_BMC},
    "hlgauss": {**_PLAIN, **_CE_HEAD, "head_loss": "hl_gauss",
                "head_loss_params": {"sigma_bins": 0.75}, "predicts_from_classes": True},
    "l1": {**_PLAIN, "regression": "l1"},
    "huber": {**_PLAIN, "regression": "huber", "regression_params": {"delta": 1.0}},
}


def constants_digest(constants: dict) -> str:
    """8 hex digits of a stable hash of a method's constants (sorted-key JSON, SHA-256)."""
    text = json.dumps(constants, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def method_identity(name: str) -> str:
    """What the registered method ``name`` is stored as: its bare name while its constants
    are :data:`LEGACY_CONSTANTS`' (every committed store keeps its keys and rows), else
    ``name@<constants_digest>``. Its class count, binning and λ as the registry holds them
    count too, although a grid or an experiment sets them (and records them beside it)."""
    method = get_method(name)
    constants = method.constants()
    if constants == LEGACY_CONSTANTS.get(method.name):
        return method.name
    return f"{method.name}@{constants_digest(constants)}"


def method_record(name: str) -> dict:
    """The entries a stored row (1D run, real-data run) gives the registered method ``name``:
    ``model``, its identity, and for any but the legacy constants ``method_constants``."""
    identity = method_identity(name)
    if "@" not in identity:
        return {"model": identity}
    return {"model": identity, "method_constants": get_method(name).constants()}


def stored_identity(model: str) -> str:
    """A stored row's method identity with old spellings of its name normalized; reading a
    row needs no constants (a store may hold runs of constants since changed)."""
    name, at, digest = model.partition("@")
    return get_method(name).name + at + digest


def registered_method(identity: str) -> Method:
    """The registered method that trains runs stored as ``identity``; refused when the
    registry's constants are no longer the ones the identity names."""
    identity = stored_identity(identity)
    name = identity.partition("@")[0]
    today = method_identity(name)
    if today != identity:
        raise ConfigError(f"method {identity!r} was stored with other constants than the "
                          f"registered {name!r} has (stored as {today!r} today)")
    return get_method(name)


def parse_methods(value: str | Iterable[str]) -> tuple[str, ...]:
    """Method names from a comma-separated string or a list: known, distinct, non-empty."""
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [METHOD_ALIASES.get(n.strip(), n.strip()) for n in names if n.strip()]
    if not names:
        raise ConfigError(f"no method given; choose from {', '.join(METHODS)}")
    for name in names:
        get_method(name)
    return tuple(dict.fromkeys(names))
