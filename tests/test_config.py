from pathlib import Path

import pytest

from pixelseg.engine.config import load_config
from pixelseg.errors import ConfigError
from pixelseg.models import create


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: deeplabv3plus, encoder: resnet18}\ntrain: {epochs: 7}\n")
    config = load_config(path, ["train.batch_size=2", "data.crop_size=[32, 48]", "optimizer.lr=1e-4"])
    assert config.model == {"name": "deeplabv3plus", "encoder": "resnet18"}
    assert (config.train.epochs, config.train.batch_size, config.data.crop_size) == (7, 2, [32, 48])
    assert config.optimizer.lr == pytest.approx(1e-4)


@pytest.mark.parametrize(("override", "amp"), [
    ("train.amp=off", "off"), ("train.amp=false", "off"), ("train.amp=no", "off"), ("train.amp=true", "auto"),
    ("train.amp=bf16", "bf16"),
])
def test_amp_takes_yaml_booleans(override, amp):
    """YAML 1.1 reads `off` and `no` as false: `--set train.amp=off` means float32, not a type error."""
    assert load_config(None, [override]).train.amp == amp


@pytest.mark.parametrize(("override", "message"), [
    ("train.epoch=3", "unknown config key 'train.epoch' (did you mean 'epochs'?)"),
    ("trian.epochs=3", "unknown config key 'trian' (did you mean 'train'?)"),
    ("train.epochs=three", "train.epochs: expected int, got 'three'"),
    ("optimizer.name=adma", "optimizer.name: 'adma' is not one of adamw, sgd (did you mean 'adamw'?)"),
    ("schedule.name=cosin", "did you mean 'cosine'?"),
])
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert message in str(caught.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_docs_config_md_is_the_generated_reference():
    """docs/config.md lists every key; regenerate it with `python scripts/config_reference.py > docs/config.md`."""
    from pathlib import Path

    from pixelseg.engine.config import Config, reference_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    assert page == reference_markdown()
    for section in ("data", "optimizer", "schedule", "train", "eval"):
        for key in getattr(Config(), section).__dataclass_fields__:
            assert f"| `{key}` |" in page
    from pixelseg.losses import LOSSES

    assert all(f"| `{name}` |" in page for name in LOSSES) and "`focal_gamma` (2.0)" in page


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_is_accepted_and_its_model_builds(path):
    """The configs the docs cite pass the key checker and name a buildable model (no weights fetched), so a renamed
    key or model option fails here instead of at the start of a user's long run."""
    config = load_config(path)
    model = dict(config.model)
    if "pretrained" in model:  # no weights fetched; a from-scratch model (bisenetv2) takes no such argument
        model["pretrained"] = False
    create(model.pop("name"), num_classes=3, **model)


def test_encoder_lr_must_be_positive():
    assert load_config(None, ["model.name=unet", "optimizer.encoder_lr=0.1"]).optimizer.encoder_lr == 0.1
    with pytest.raises(ConfigError, match="optimizer.encoder_lr: -0.1 must be above 0"):
        load_config(None, ["model.name=unet", "optimizer.encoder_lr=-0.1"])


def test_grad_clip_must_be_positive():
    assert load_config(None, ["model.name=unet", "train.grad_clip=1.0"]).train.grad_clip == 1.0
    with pytest.raises(ConfigError, match="train.grad_clip"):
        load_config(None, ["model.name=unet", "train.grad_clip=0"])
