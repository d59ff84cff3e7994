"""Seeded torch randomness that leaves torch's global random state as it was.

Model initialization and the training loop draw from torch's global generator (``nn.init``,
``torch.rand`` in an augmentation, a DataLoader's worker seeds), so they are run inside
:func:`seeded`: the block starts from ``seed`` — the same draws as ``torch.manual_seed(seed)``
— and the caller's CPU and CUDA random states come back unchanged when it ends, so building
a model or training one never shifts what the caller draws next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's generators seeded from ``seed``; restore them afterwards."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield
