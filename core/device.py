"""The one device and dtype rule, used by the engine, the reference, real data and the CLI.

``auto`` picks CUDA when present, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name a device
outright. An unknown name, or CUDA on a machine without it, is a configuration error (exit 2).
"""

from __future__ import annotations

import re

import torch
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.vocabulary import DEVICE_HELP, DTYPES

_DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
assert tuple(TORCH_DTYPES) == DTYPES


def check_device_name(name: str | torch.device) -> str:
    """``name`` if it is one of the rule's names (auto, cpu, cuda, cuda:N), else a
    :class:`ConfigError`; says nothing about whether that device is present."""
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or not _DEVICE_NAME.fullmatch(name):
        raise ConfigError(f"unknown device {name!r}; use {DEVICE_HELP}")
    return name


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for ``name`` on this machine (see the module docstring)."""
    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def resolve_dtype(name: str) -> torch.dtype:
    """``float32`` or ``float64`` as a torch dtype."""
    if name not in TORCH_DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return TORCH_DTYPES[name]
