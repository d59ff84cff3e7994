"""One device rule for every command: auto, cpu, cuda, cuda:N; anything else exits 2."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from clsreg.analysis.errors import ConfigError
from clsreg.cli import cli
from clsreg.core.device import resolve_device, resolve_dtype

COMMANDS = [
    ["simulate", "run", "--preset", "smoke"],
    ["realdata", "run", "--dataset", "hotel_rates"],
    ["realdata", "series", "--dataset", "diamonds"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("device", ["tpu", "cuda:x", "CPU", ""])
def test_an_unknown_device_is_the_same_one_line_error_everywhere(tmp_path, command, device):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [*command, "--device", device, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"Error: unknown device {device!r}; use auto (CUDA when "
                                     "present), cpu, cuda or cuda:N")
    assert not out.exists()


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda", 0)
        with pytest.raises(ConfigError, match="does not exist"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:0"):
            with pytest.raises(ConfigError, match="no CUDA device is available"):
                resolve_device(name)
    assert resolve_dtype("float64") == torch.float64
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("float16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_cuda_without_cuda_exits_2_everywhere(tmp_path, command):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [*command, "--device", "cuda:0", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("Error: device 'cuda:0' was asked for but no CUDA device "
                                     "is available")
    assert not out.exists()
