"""Image and depth models of the real benchmarks: shapes, the seeding rule, local weights."""

import importlib.util
import sys

import pytest
import torch
from clsreg.analysis.errors import InputError
from clsreg.core.heads import RegClsHeads
from clsreg.realdata.backbones import (
    CLASS_SEED_OFFSET,
    ImageRegCls,
    build_breakfast_model,
    build_depth_model,
    build_image_model,
    pixel_class_head,
    resnet50_features,
)
from clsreg.realdata.models import build_model
from torch import nn

needs_vision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="needs the vision extra"
)

RESNET50_FEATURE_PARAMS = 23_508_032


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shared(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight but the class head's: what all methods of a seed must share."""
    return {k: v for k, v in model.state_dict().items() if "classification" not in k}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _class_head(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if "classification" in k}


# ---------------------------------------------------------------- image models


@pytest.mark.parametrize(
    ("backbone", "in_channels", "size"),
    [
        pytest.param("resnet50", 3, 64, marks=needs_vision),
        ("small-cnn", 1, 28),
        ("small-cnn", 3, 8),
    ],
)
@pytest.mark.parametrize("num_classes", [0, 5])
def test_image_model_shapes(backbone, in_channels, size, num_classes):
    model = build_image_model(num_classes, seed=0, backbone=backbone, in_channels=in_channels)
    assert isinstance(model, ImageRegCls)
    model.eval()
    with torch.no_grad():
        prediction, logits = model(torch.randn(2, in_channels, size, size))
    assert prediction.shape == (2,) and prediction.dtype == torch.float32
    if num_classes:
        assert logits.shape == (2, num_classes) and logits.dtype == torch.float32
    else:
        assert logits is None


@pytest.mark.parametrize(
    ("backbone", "in_channels"), [pytest.param("resnet50", 3, marks=needs_vision), ("small-cnn", 1)]
)
def test_image_seeding_rule(backbone, in_channels):
    def build(num_classes, seed):
        return build_image_model(num_classes, seed, backbone=backbone, in_channels=in_channels)

    plain, with_classes, other = build(0, 0), build(5, 0), build(5, 1)
    assert _same(_shared(plain), _shared(with_classes))
    assert not _same(_shared(with_classes), _shared(other))
    torch.manual_seed(0 + CLASS_SEED_OFFSET)  # the class head's own stream, drawn directly
    expected = RegClsHeads(with_classes.heads.regression.in_features, 5).classification
    assert _same(with_classes.heads.classification.state_dict(), expected.state_dict())
    assert not _same(_class_head(with_classes), _class_head(other))


def test_image_model_rejects_bad_options():
    with pytest.raises(InputError, match="unknown image backbone"):
        build_image_model(0, 0, backbone="vgg")
    with pytest.raises(InputError, match="3-channel"):
        build_image_model(0, 0, in_channels=1)
    with pytest.raises(InputError, match="resnet50 backbone"):
        build_image_model(0, 0, weights="w.pt", backbone="small-cnn", in_channels=1)


# ---------------------------------------------------------------- ResNet-50 weights


@pytest.fixture(scope="module")
def torchvision_resnet():
    """A randomly initialised torchvision ResNet-50 (with its fc) and its saved state_dict."""
    import torchvision

    torch.manual_seed(123)
    return torchvision.models.resnet50(weights=None).eval()


@pytest.fixture(scope="module")
def weights_file(torchvision_resnet, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet50.pt"
    torch.save(torchvision_resnet.state_dict(), path)
    return path


@needs_vision
def test_resnet50_feature_count_is_torchvision_without_fc(torchvision_resnet):
    fc = _count(torchvision_resnet.fc)
    features = resnet50_features()
    assert _count(features) == _count(torchvision_resnet) - fc == RESNET50_FEATURE_PARAMS


@needs_vision
def test_weights_file_gives_identical_features(torchvision_resnet, weights_file):
    features = resnet50_features(weights_file).eval()
    reference = nn.Sequential(*list(torchvision_resnet.children())[:-1], nn.Flatten())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got, expected = features(x), reference(x)
    assert got.shape == (2, 2048)
    assert torch.equal(got, expected)


@needs_vision
def test_weights_under_state_dict_key_load(torchvision_resnet, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": torchvision_resnet.state_dict(), "epoch": 3}, path)
    model = build_image_model(0, seed=7, weights=path)
    assert torch.equal(model.backbone.conv1.weight, torchvision_resnet.conv1.weight)


@needs_vision
def test_weights_with_a_wrong_key_name_the_file_and_key(weights_file, tmp_path):
    state = torch.load(weights_file, weights_only=True)
    state["conv0.weight"] = state.pop("conv1.weight")
    path = tmp_path / "renamed.pt"
    torch.save(state, path)
    with pytest.raises(InputError) as error:
        resnet50_features(path)
    message = str(error.value)
    assert str(path) in message and "conv1.weight" in message and "conv0.weight" in message
    assert "\n" not in message


@needs_vision
def test_weights_with_a_wrong_shape_are_refused(weights_file, tmp_path):
    state = torch.load(weights_file, weights_only=True)
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    path = tmp_path / "gray.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match="conv1.weight has shape"):
        resnet50_features(path)


@needs_vision
def test_missing_or_unreadable_weights_file(tmp_path):
    with pytest.raises(InputError, match="no such ResNet-50 weights file"):
        resnet50_features(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint\n\x00\x01")
    with pytest.raises(InputError, match="cannot read ResNet-50 weights") as error:
        resnet50_features(garbage)
    assert str(garbage) in str(error.value) and "\n" not in str(error.value)
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(InputError, match="not a ResNet-50 state_dict"):
        resnet50_features(tensor_file)


def test_missing_torchvision_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    for build in (lambda: build_image_model(0, 0), lambda: build_depth_model(10, 0)):
        with pytest.raises(InputError, match=r"pip install 'clsreg\[vision\]'"):
            build()
    model = build_image_model(3, 0, backbone="small-cnn", in_channels=1)
    assert model(torch.randn(1, 1, 28, 28))[1].shape == (1, 3)


# ---------------------------------------------------------------- NYUD2 depth


@pytest.fixture(scope="module")
def depth_models():
    return {(c, s): build_depth_model(c, s) for c, s in [(0, 0), (10, 0), (10, 1)]}


@needs_vision
def test_depth_seeding_rule(depth_models):
    plain, with_classes, other = depth_models[0, 0], depth_models[10, 0], depth_models[10, 1]
    assert plain.classification is None
    assert _same(_shared(plain), _shared(with_classes))
    assert not _same(_shared(with_classes), _shared(other))
    torch.manual_seed(0 + CLASS_SEED_OFFSET)  # the class head's own stream, drawn directly
    expected = pixel_class_head(with_classes.hidden_channels, 10)
    assert _same(with_classes.classification.state_dict(), expected.state_dict())
    assert not _same(_class_head(with_classes), _class_head(other))


@needs_vision
def test_depth_output_is_half_size_without_classes(depth_models):
    model = depth_models[0, 0].eval()
    with torch.no_grad():
        depth, logits = model(torch.randn(1, 3, 70, 90))
    assert depth.shape == (1, 35, 45) and depth.dtype == torch.float32
    assert logits is None


@needs_vision
def test_depth_backward_with_per_pixel_loss(depth_models):
    model = depth_models[10, 0].train()
    depth, logits = model(torch.randn(1, 3, 64, 96))
    assert depth.shape == (1, 32, 48) and depth.dtype == torch.float32
    assert logits.shape == (1, 10, 32, 48) and logits.dtype == torch.float32
    target = torch.rand(1, 32, 48) * 10
    classes = torch.randint(0, 10, (1, 32, 48))
    loss = nn.functional.mse_loss(depth, target) + nn.functional.cross_entropy(logits, classes)
    # Gradients of the encoder and both heads only: the decoder's weight gradients would
    # triple the CPU time of this test, and the encoder's need the whole chain anyway.
    params = [*model.encoder.parameters(), *model.regression.parameters()]
    params += [*model.classification.parameters()]
    grads = torch.autograd.grad(loss, params)
    assert all(torch.isfinite(g).all() for g in grads)
    assert model.encoder.conv1.weight is params[0] and grads[0].abs().sum() > 0


# ---------------------------------------------------------------- Breakfast


@pytest.mark.parametrize("num_classes", [0, 100])
def test_breakfast_model_is_the_shared_mlp(num_classes):
    model = build_breakfast_model(num_classes, seed=4)
    reference = build_model(64, num_classes, 4, hidden=(40, 20))
    assert _same(model.state_dict(), reference.state_dict())
    prediction, logits = model(torch.randn(3, 64))
    assert prediction.shape == (3,)
    assert (logits is None) if not num_classes else logits.shape == (3, 100)
