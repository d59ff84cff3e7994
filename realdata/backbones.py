"""Image and depth models of the real benchmarks, each with a regression and a class head.

Every model's ``forward(x)`` returns ``(prediction, logits)`` like
:class:`realdata.models.RegClsModel`; ``logits`` is ``None`` without classes. The builders
follow the seeding rule of :func:`realdata.models.build_model`: all methods of one seed start
from identical backbone and regression-head weights, and a class head is drawn from a stream
of its own (``seed + CLASS_SEED_OFFSET``), so two methods' models differ only in the class
head.

torchvision is an optional extra (``pip install 'clsreg[vision]'``) and is imported only when
a ResNet-50 is built; the small CNN of the Fashion-MNIST benchmark needs none. Nothing is ever
downloaded: ResNet-50 starts from random weights unless the user names a local file.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from clsreg.analysis.errors import InputError
from clsreg.core.heads import RegClsHeads
from clsreg.core.seeding import seeded
from torch import nn

from .models import CLASS_SEED_OFFSET, RegClsModel, build_model, seeded_heads

RESNET50_WIDTH = 2048
RESNET50_STAGES = (256, 512, 1024, 2048)
IMAGE_BACKBONES = ("resnet50", "small-cnn")
DEPTH_CLASSES = 10
BREAKFAST_HIDDEN = (40, 20)
BREAKFAST_FEATURES = 64

_VISION_HINT = "the image benchmarks need torchvision: pip install 'clsreg[vision]'"
_SHOWN_KEYS = 3


def _torchvision() -> ModuleType:
    """torchvision, imported late so that everything else runs without the extra."""
    try:
        import torchvision.models
    except ImportError as error:
        raise InputError(_VISION_HINT) from error
    return torchvision


# ---------------------------------------------------------------- ResNet-50 features


def resnet50_features(weights: str | Path | None = None) -> nn.Module:
    """torchvision's ResNet-50 with ``fc`` removed: (B, 3, H, W) → (B, 2048) pooled features.

    Random init unless ``weights`` names a local torchvision ResNet-50 state_dict; ``fc.*``
    keys in the file are ignored, so a full classifier checkpoint loads as well.
    """
    model = _torchvision().models.resnet50(weights=None)
    model.fc = nn.Identity()
    if weights is not None:
        _load_resnet50_weights(model, Path(weights).expanduser())
    return model


def _load_resnet50_weights(model: nn.Module, path: Path) -> None:
    """Load ``path`` into ``model`` or raise one InputError line saying what is wrong."""
    state = _read_state_dict(path)
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = model.state_dict()
    missing = [key for key in expected if key not in state and not _optional_key(key)]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise InputError(
            f"{path}: not a torchvision ResNet-50 state_dict "
            f"(missing: {_few(missing)}; unexpected: {_few(unexpected)})"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise InputError(
                f"{path}: ResNet-50 weight {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=False)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state_dict, or a dict holding one under "state_dict"."""
    if not path.is_file():
        raise InputError(f"{path}: no such ResNet-50 weights file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: pickle, zip and torch errors alike
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(f"{path}: cannot read ResNet-50 weights ({reason})") from error
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise InputError(f"{path}: not a ResNet-50 state_dict (a dict of name → tensor)")
    return loaded


def _optional_key(key: str) -> bool:
    """BatchNorm step counters: older checkpoints lack them and they do not affect outputs."""
    return key.endswith("num_batches_tracked")


def _few(keys: list[str]) -> str:
    """A few key names for a one-line message."""
    if not keys:
        return "none"
    more = f" (+{len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


# ---------------------------------------------------------------- image models


class SmallCNN(nn.Module):
    """conv 32 → pool → conv 64 → pool → 7×7 grid → 128-d: trains on a CPU in minutes.

    The adaptive 7×7 pool keeps where features lie (an angle target needs that) and lets any
    input size through; 28×28 inputs reach it exactly.
    """

    def __init__(self, in_channels: int, width: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, width),
            nn.ReLU(),
        )
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageRegCls(nn.Module):
    """Image backbone features → (regression prediction (B,), class logits (B, C) or None)."""

    def __init__(self, backbone: nn.Module, heads: RegClsHeads):
        super().__init__()
        self.backbone = backbone
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.heads(self.backbone(x))


def build_image_model(
    num_classes: int,
    seed: int,
    weights: str | Path | None = None,
    backbone: str = "resnet50",
    in_channels: int = 3,
) -> ImageRegCls:
    """The image model of one method for ``seed`` (seeding rule: see the module docstring).

    ``backbone`` is "resnet50" (3-channel images, optional local ``weights``) or "small-cnn"
    (any channel count, random init, no torchvision needed).
    """
    if backbone not in IMAGE_BACKBONES:
        raise InputError(f"unknown image backbone {backbone!r}; choose one of {IMAGE_BACKBONES}")
    if backbone == "resnet50" and in_channels != 3:
        raise InputError(f"resnet50 takes 3-channel images, got in_channels={in_channels}")
    if backbone == "small-cnn" and weights is not None:
        raise InputError("weights files are for the resnet50 backbone; small-cnn starts random")
    with seeded(seed):
        if backbone == "resnet50":
            features, width = resnet50_features(weights), RESNET50_WIDTH
        else:
            features = SmallCNN(in_channels)
            width = features.out_features
        return ImageRegCls(features, seeded_heads(width, num_classes, seed))


# ---------------------------------------------------------------- NYUD2 depth (Hu et al.)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """A same-size convolution followed by BatchNorm (no bias: BN has one)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


class UpProjection(nn.Module):
    """Upsample to ``size``, then relu(5×5→BN→ReLU→3×3→BN  +  5×5→BN) (Laina et al.)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.main = nn.Sequential(
            _conv_bn(in_channels, out_channels, 5),
            nn.ReLU(),
            _conv_bn(out_channels, out_channels, 3),
        )
        self.shortcut = _conv_bn(in_channels, out_channels, 5)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return F.relu(self.main(x) + self.shortcut(x))


class DepthDecoder(nn.Module):
    """D: 1×1 conv 2048 → 1024, then four up-projections 1024 → 512 → 256 → 128 → 64.

    The first three land on the encoder stages' sizes, the last on the output size.
    """

    def __init__(self, in_channels: int = RESNET50_STAGES[-1]):
        super().__init__()
        width = in_channels // 2
        self.reduce = nn.Sequential(_conv_bn(in_channels, width, 1), nn.ReLU())
        self.ups = nn.ModuleList(
            UpProjection(width // 2**i, width // 2 ** (i + 1)) for i in range(4)
        )
        self.out_channels = width // 2**4

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = self.reduce(stages[-1])
        targets = [tuple(stage.shape[-2:]) for stage in stages[-2::-1]] + [size]
        for up, target in zip(self.ups, targets, strict=True):
            x = up(x, target)
        return x


class FeatureFusion(nn.Module):
    """MFF: each encoder stage up-projected to the output size (16 channels), fused by 5×5."""

    def __init__(self, stage_channels: tuple[int, ...] = RESNET50_STAGES, per_stage: int = 16):
        super().__init__()
        self.ups = nn.ModuleList(UpProjection(c, per_stage) for c in stage_channels)
        self.out_channels = per_stage * len(stage_channels)
        self.fuse = nn.Sequential(_conv_bn(self.out_channels, self.out_channels, 5), nn.ReLU())

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        fused = [up(stage, size) for up, stage in zip(self.ups, stages, strict=True)]
        return self.fuse(torch.cat(fused, dim=1))


def pixel_class_head(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A 1×1 conv class head, initialised like :class:`RegClsHeads` (Xavier, zero bias)."""
    head = nn.Conv2d(in_channels, num_classes, kernel_size=1)
    nn.init.xavier_uniform_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class DepthRegCls(nn.Module):
    """Hu et al. (WACV 2019): ResNet-50 encoder E, decoder D, fusion MFF, refinement R.

    R reads concat(D, MFF) (64 + 64 channels) through two 5×5 conv→BN→ReLU layers; the
    regression output (a 5×5 conv to 1 channel) and the per-pixel class head (1×1 conv) read
    the same last hidden features. Outputs are at exactly (H // 2, W // 2).
    """

    def __init__(self, encoder: nn.Module, num_classes: int | None = DEPTH_CLASSES):
        super().__init__()
        self.encoder = encoder
        self.decoder = DepthDecoder()
        self.fusion = FeatureFusion()
        width = self.decoder.out_channels + self.fusion.out_channels
        self.refine = nn.Sequential(
            _conv_bn(width, width, 5), nn.ReLU(), _conv_bn(width, width, 5), nn.ReLU()
        )
        self.regression = nn.Conv2d(width, 1, kernel_size=5, padding=2)
        self.hidden_channels = width
        self.classification = pixel_class_head(width, num_classes) if num_classes else None

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four ResNet stages' outputs (1/4 … 1/32 of the input size)."""
        e = self.encoder
        x = e.maxpool(e.relu(e.bn1(e.conv1(x))))
        stages = []
        for layer in (e.layer1, e.layer2, e.layer3, e.layer4):
            x = layer(x)
            stages.append(x)
        return stages

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        size = (x.shape[-2] // 2, x.shape[-1] // 2)
        stages = self.encode(x)
        hidden = torch.cat([self.decoder(stages, size), self.fusion(stages, size)], dim=1)
        hidden = self.refine(hidden)
        depth = self.regression(hidden).squeeze(1)
        logits = self.classification(hidden) if self.classification is not None else None
        return depth, logits


def build_depth_model(
    num_classes: int, seed: int, weights: str | Path | None = None
) -> DepthRegCls:
    """The NYUD2 model of one method for ``seed`` (seeding rule: see the module docstring);
    ``num_classes=0`` gives the regression-only model; the benchmark uses DEPTH_CLASSES."""
    with seeded(seed):
        model = DepthRegCls(resnet50_features(weights), None)
    if num_classes:
        with seeded(seed + CLASS_SEED_OFFSET):
            model.classification = pixel_class_head(model.hidden_channels, num_classes)
    return model


# ---------------------------------------------------------------- Breakfast


def build_breakfast_model(num_classes: int, seed: int) -> RegClsModel:
    """The Breakfast progress MLP 64 → 40 → 20 with the shared heads."""
    return build_model(BREAKFAST_FEATURES, num_classes, seed, hidden=BREAKFAST_HIDDEN)
