"""Feature extractors: weight loading (strict), the labelled offline fallback, output shape and norm."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from meshinv_lite.features import (IMAGENET_MEAN, IMAGENET_STD, VGG19_CLASSIFIER_INDICES, VGG19_CONV_INDICES, VGG19_FILENAME, clear_extractor_cache, fallback_vgg19, load_feature_extractor, masked_features, vgg19_hub_path)

# torchvision's vgg19 conv channels, in order (the 16 convolutions of ``features``).
VGG19_CHANNELS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256),
                  (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


def _fake_vgg19_state(small_classifier: bool = True) -> dict:
    """A state dict in torchvision's VGG-19 layout (random values; the classifier kept tiny to save disk)."""
    g = torch.Generator().manual_seed(3)
    state = {}
    for idx, (cin, cout) in zip(VGG19_CONV_INDICES, VGG19_CHANNELS):
        if idx > 10:  # layers past relu3_1 are only present, never used: keep the file small
            cin, cout = 1, 1
        state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.01
    for idx in VGG19_CLASSIFIER_INDICES:
        state[f"classifier.{idx}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{idx}.bias"] = torch.zeros(2)
    return state


def _reference_relu3_1(state: dict, images: torch.Tensor) -> torch.Tensor:
    """conv1_1 ... relu3_1 written out with F.conv2d, as torchvision computes it."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images - mean) / std
    for idx in (0, 2, 5, 7, 10):
        x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
        if idx in (2, 7):
            x = F.max_pool2d(x, 2)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-10)


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert not vgg19_hub_path().exists()
    return tmp_path


def test_fallback_is_labelled_and_used_without_weights(no_hub):
    with pytest.warns(UserWarning, match="OFFLINE FALLBACK"):
        ex = load_feature_extractor("vgg19")
    assert ex.is_fallback and ex.name.startswith("OFFLINE FALLBACK")
    assert VGG19_FILENAME in ex.name  # says which file was missing
    again = fallback_vgg19()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(ex(x), again(x))  # seeded: the same network every time
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        load_feature_extractor("vgg19", allow_fallback=False)


def test_output_shape_unit_norm_frozen_and_differentiable(no_hub):
    ex = fallback_vgg19()
    x = torch.rand(2, 3, 64, 48, requires_grad=True)
    f = ex(x)
    assert f.shape == (2, 256, 16, 12) and ex.out_channels == 256 and ex.stride == 4
    assert torch.allclose(f.norm(dim=1), torch.ones(2, 16, 12), atol=1e-5)
    f.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in ex.parameters())
    ex.train()
    assert not ex.training  # frozen extractors stay in eval mode
    feats, small = masked_features(ex, x.detach(), torch.ones(2, 1, 64, 48))
    assert feats.shape == (2, 256, 16, 12) and small.shape == (2, 1, 16, 12) and small.min() == 1


def test_torchvision_layout_state_dict_loads_and_matches_reference(tmp_path):
    state = _fake_vgg19_state()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    ex = load_feature_extractor("vgg19", weights=path)
    assert not ex.is_fallback and str(path) in ex.name and "vgg19-relu3_1" in ex.name
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ex(x), _reference_relu3_1(state, x), atol=1e-5)


def test_hub_cache_is_used_when_present(no_hub):
    path = vgg19_hub_path()
    path.parent.mkdir(parents=True)
    torch.save(_fake_vgg19_state(), path)
    ex = load_feature_extractor()
    assert not ex.is_fallback and str(path) in ex.name


def test_corrupt_file_raises_naming_the_file(tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(_fake_vgg19_state(), path)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=r"vgg19\.pth.*corrupt"):
        load_feature_extractor("vgg19", weights=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_feature_extractor("vgg19", weights=tmp_path / "nope.pth", allow_fallback=True)


def test_missing_unexpected_and_mismatched_keys_raise(tmp_path):
    state = _fake_vgg19_state()
    del state["features.5.weight"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing\.pth.*missing keys \['features\.5\.weight'\]"):
        load_feature_extractor(weights=path)

    state = _fake_vgg19_state()
    state["features.1.running_mean"] = torch.zeros(64)  # e.g. vgg19_bn
    path = tmp_path / "bn.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"unexpected keys \['features\.1\.running_mean'\]"):
        load_feature_extractor(weights=path)

    state = _fake_vgg19_state()
    state["features.10.weight"] = torch.zeros(128, 128, 3, 3)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"shape\.pth.*features\.10\.weight: expected \(256, 128, 3, 3\)"):
        load_feature_extractor(weights=path)

    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=r"list\.pth"):
        load_feature_extractor(weights=path)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown feature extractor 'inception'.*vgg19"):
        load_feature_extractor("inception")


def test_loader_caches_per_kind_weights_and_device(tmp_path, no_hub):
    path = tmp_path / "vgg19.pth"
    torch.save(_fake_vgg19_state(), path)
    a = load_feature_extractor(weights=path)
    assert load_feature_extractor(weights=str(path), device="cpu") is a
    with pytest.warns(UserWarning, match="OFFLINE FALLBACK"):
        fb = load_feature_extractor()
    assert fb is not a and fb.is_fallback
    # a replaced file is a different extractor, not a stale cached one
    state = _fake_vgg19_state()
    state["features.0.bias"] = state["features.0.bias"] + 1.0
    torch.save(state, path)
    b = load_feature_extractor(weights=path)
    x = torch.rand(1, 3, 16, 16)
    assert b is not a and torch.allclose(b(x), _reference_relu3_1(state, x), atol=1e-5)
    clear_extractor_cache()
    assert load_feature_extractor(weights=path) is not b
