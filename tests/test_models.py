import json

import pytest
import timm
import torch

import pixelseg
from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.models import create, list_models, save_model

SMALL = {
    "unet": {"encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8]},
    "deeplabv3plus": {"encoder": "resnet18", "decoder_channels": 32},
    "fcn8s": {},
    "fcn16s": {"encoder": "resnet18"},
    "fcn32s": {"encoder": "resnet18"},
}


def test_registry_lists_the_first_architectures():
    assert {"unet", "fcn8s", "fcn16s", "fcn32s", "deeplabv3plus"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_at_input_resolution_for_odd_sizes(name):
    model = create(name, num_classes=5, **SMALL[name]).eval()
    with torch.no_grad():
        for height, width in ((37, 53), (64, 64), (33, 97)):
            assert model(torch.randn(1, 3, height, width)).shape == (1, 5, height, width)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradients_reach_the_first_layer(name):
    model = create(name, num_classes=3, **SMALL[name]).train()
    logits = model(torch.randn(2, 3, 64, 64))
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 3, (2, 64, 64))).backward()
    first = next(p for p in model.parameters() if p.ndim == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_deeplab_output_stride_and_rates():
    model = create("deeplabv3plus", num_classes=2, encoder="resnet18", output_stride=8)
    rates = [branch[0].dilation[0] for branch in model.decoder.aspp.branches[1:4]]
    assert rates == [12, 24, 36]
    assert max(model.encoder.reductions) == 8
    with pytest.raises(ConfigError, match="output_stride must be 8 or 16"):
        create("deeplabv3plus", num_classes=2, encoder="resnet18", output_stride=32)


def test_fcn8s_vgg16_matches_the_published_parameter_count():
    # Long et al. report 134M parameters for FCN-8s on VGG16 (PASCAL VOC, 21 classes).
    model = create("fcn8s", num_classes=21)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 134e6) / 134e6 < 0.01
    assert model.head.upscore2[0].weight[0, 0].max() > 0  # bilinear initialisation


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'unet'"):
        create("unte", num_classes=2)
    with pytest.raises(ConfigError, match="unknown timm encoder 'resnet81'"):
        create("unet", num_classes=2, encoder="resnet81")
    with pytest.raises(ConfigError, match="unexpected keyword argument 'encodr'"):
        create("unet", num_classes=2, encodr="resnet18")


def test_pretrained_path_loads_local_timm_weights(tmp_path):
    reference = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = create("unet", num_classes=2, encoder="resnet18", pretrained=str(path))
    assert torch.equal(model.encoder.model.conv1.weight, reference.conv1.weight)
    assert "pretrained" not in model.config  # the checkpoint, not the file, holds the weights afterwards
    with pytest.raises(CheckpointError, match="not found"):
        create("unet", num_classes=2, encoder="resnet18", pretrained=str(tmp_path / "missing.pth"))


def test_pretrained_path_loads_local_vgg16_weights_into_fcn(tmp_path):
    from safetensors.torch import save_file

    reference = timm.create_model("vgg16")
    path = tmp_path / "vgg16.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create("fcn8s", num_classes=3, pretrained=str(path))
    assert torch.equal(model.encoder.features[0].weight, reference.features[0].weight)
    assert torch.equal(model.head.fc6.weight, reference.pre_logits.fc1.weight)


def test_pretrained_true_without_network_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to the hub")
        return original(*args, **kwargs)

    original = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(CheckpointError, match="pass pretrained=PATH"):
        create("unet", num_classes=2, encoder="resnet18", pretrained=True)


def test_save_and_load_round_trip(tmp_path):
    model = create("deeplabv3plus", num_classes=4, **SMALL["deeplabv3plus"]).eval()
    model.meta["inference_scale"] = 0.5
    save_model(model, tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["model"]["name"] == "deeplabv3plus"
    loaded = pixelseg.load(tmp_path / "model")
    images = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(model(images), loaded(images))
    assert loaded.meta["inference_scale"] == 0.5


def test_loading_weights_of_another_shape_is_a_clear_error(tmp_path):
    save_model(create("unet", num_classes=4, **SMALL["unet"]), tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["num_classes"] = 7
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="weights do not fit unet with 7 classes"):
        pixelseg.load(tmp_path / "model")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        pixelseg.load(tmp_path / "nothing")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        pixelseg.load(tmp_path / "junk.pt")
