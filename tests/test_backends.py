"""Inference backends (eager with folded batch norms, ONNX, torch.compile), export, batched sliding windows and
test-time augmentation, the pipelined folder prediction and the decoded-image cache."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import pixelseg
from pixelseg.data import open_dataset
from pixelseg.engine.backends import fold_batch_norms, static_same_padding, with_backend
from pixelseg.engine.predict import predict_files
from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.inference import predict_image, predict_logits, sliding_window_logits
from pixelseg.io import write_image
from pixelseg.models import create, save_model
from tests.conftest import requires_shared
from tests.test_cli import pixelseg as run_cli


def small_model(name: str = "unet", **options) -> pixelseg.models.SegmentationModel:
    torch.manual_seed(0)
    defaults = {"encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8]} if name == "unet" else {}
    model = pixelseg.create(name, num_classes=5, **{**defaults, **options})
    for module in model.modules():  # non-trivial statistics, so that a wrong fold shows
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["unet", "deeplabv3plus", "fpn", "segnet_basic", "fcdensenet56"])
def test_folding_batch_norms_keeps_the_outputs(name):
    model = small_model(name)
    images = torch.randn(2, 3, 70, 90)
    with torch.no_grad():
        expected = model(images)
    folded = with_backend(model, "eager")
    if name == "fcdensenet56":  # pre-activation (BN, ReLU, conv): every convolution's output is also concatenated
        assert folded.folded == 0
    else:
        assert folded.folded > 0
    if name == "unet":  # every norm there follows a convolution
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.network.modules())
        with torch.inference_mode():  # the fold records an autograd graph: it must work from inference mode too
            assert with_backend(model, "eager").folded == folded.folded
    close = torch.isclose(folded(images), expected, atol=1e-4, rtol=1e-4)
    if name == "segnet_basic":
        # Unpooling puts each value where its max-pooling index says. Two candidates 1e-6 apart can swap places
        # under another summation order (channels-last, folded weights): on an Intel AMX machine 1 of 15,360
        # stage-3 indices flipped and moved a value by one pixel; the decoder's 7x7 convolutions spread that to
        # 3.8 % of the logits (at most 6e-4 off). A wrong fold is off everywhere: a 0.01 error in the running
        # means leaves 1 % of them close.
        assert close.float().mean() > 0.9
    else:
        assert close.all()
    with torch.no_grad():  # the model handed in is left as it was
        assert torch.equal(model(images), expected)


def test_fold_leaves_a_shared_or_unpaired_norm_alone():
    conv, norm = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
    norm.running_mean.fill_(0.3)
    shared = nn.Sequential(conv, norm, nn.ReLU(), nn.Conv2d(4, 4, 1), norm)  # one norm after two convolutions
    images = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = shared.eval()(images)
        assert fold_batch_norms(shared, images) == 0
        assert torch.equal(shared(images), expected)


class ConvFeedingNormAndSkip(nn.Module):
    """FC-DenseNet's pattern: a convolution's output goes into a pre-activation batch norm and, unnormalised,
    into a concatenation (the dense block's skip)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm, self.mix = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        return self.mix(torch.cat([features, torch.relu(self.norm(features))], 1))


def test_fold_leaves_a_norm_alone_when_the_convolution_output_is_also_used_elsewhere():
    model = ConvFeedingNormAndSkip()
    model.norm.running_mean.fill_(0.3)
    model.norm.running_var.fill_(2.0)
    images = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model.eval()(images)
        assert fold_batch_norms(model, images) == 0
        assert torch.equal(model(images), expected)


def test_onnx_and_eager_backends_match_the_model(tmp_path):
    pytest.importorskip("onnxruntime")
    model = small_model()
    images = torch.randn(2, 3, 67, 93)  # odd size: padded inside, logits cropped back
    with torch.no_grad():
        expected = model(images)
    for backend in ("eager", "onnx"):
        produced = with_backend(model, backend)(images)
        assert produced.shape == expected.shape
        assert torch.allclose(produced, expected, atol=1e-4, rtol=1e-4), backend
    bf16 = with_backend(model, "eager", "bf16")(images)
    assert bf16.dtype == torch.float32 and (bf16.argmax(1) == expected.argmax(1)).float().mean() > 0.9


def test_bf16_eager_stores_its_weights_in_bf16_with_autocasts_exact_results():
    """The weights autocast would cast on every call are cast once: the same logits, bit for bit, as autocast over
    the float32 weights."""
    eager = with_backend(small_model(), "eager", "bf16")
    convolutions = [m for m in eager.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(m.weight.dtype == torch.bfloat16 for m in convolutions)
    reference = copy.deepcopy(eager.network)
    for module in reference.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.float()  # bf16 -> float32 is exact: the weights autocast would start from
    images = torch.randn(2, 3, 64, 96).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = reference.forward_padded(images).float()
    assert torch.equal(eager.forward_padded(images), expected)


def test_tf_encoders_get_static_padding_and_folded_norms_with_the_same_outputs(tmp_path):
    """The ``tf_*`` EfficientNets pad their strided convolutions TensorFlow's way (timm's Conv2dSame) and put the
    activation inside the batch norm (BatchNormAct2d): the eager path makes the padding fixed and folds those norms,
    the ONNX export does the same (else torch.export reasons symbolically about every pad, minutes for Lite2)."""
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.norm_act import BatchNormAct2d

    model = small_model("fpn", encoder="tf_efficientnet_lite0", pretrained=False)
    images = torch.randn(2, 3, 70, 90)  # padded to 96x96 inside: the pads are those of any multiple of 32
    with torch.no_grad():
        expected = model(images)
    eager = with_backend(model, "eager")
    assert eager.static_padding > 0 and eager.folded > 0
    assert not any(type(m) in (Conv2dSame, BatchNormAct2d) for m in eager.network.modules())
    assert torch.allclose(eager(images), expected, atol=1e-4, rtol=1e-4)
    assert any(type(m) is Conv2dSame for m in model.modules())  # the model handed in is left as it was
    bf16 = with_backend(model, "eager", "bf16")  # there the norms stay (folded, they cost accuracy on CamVid)
    assert bf16.static_padding == eager.static_padding
    assert any(type(m) is BatchNormAct2d for m in bf16.network.modules())
    pytest.importorskip("onnxruntime")
    onnx = with_backend(model, "onnx")
    for size in ((70, 90), (130, 40)):  # one file, any size
        batch = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert torch.allclose(onnx(batch), model(batch), atol=1e-4, rtol=1e-4), size


def test_static_padding_only_where_every_padded_size_gives_the_same_pad():
    from timm.layers.conv2d_same import Conv2dSame

    def network():
        torch.manual_seed(0)
        return nn.Sequential(Conv2dSame(3, 4, 3, stride=2), Conv2dSame(4, 4, 5, stride=2))

    images = torch.randn(1, 3, 8, 12)
    with torch.no_grad():
        expected = network()(images)
    for divisor, replaced in ((4, 2), (2, 1), (1, 0)):  # divisor 2: the second layer sees odd sizes (3, 5 ...)
        model = network()
        assert static_same_padding(model, divisor) == replaced
        with torch.no_grad():
            assert torch.allclose(model(images), expected, atol=1e-6)


def test_eager_and_onnx_paths_take_a_model_of_other_channel_counts():
    pytest.importorskip("onnxruntime")
    model = small_model(in_channels=1)
    images = torch.randn(1, 1, 40, 52)
    with torch.no_grad():
        expected = model(images)
    for backend in ("eager", "onnx"):
        assert torch.allclose(with_backend(model, backend)(images), expected, atol=1e-4, rtol=1e-4), backend


def test_compile_backend_matches_the_model():
    model = small_model()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
    assert torch.allclose(with_backend(model, "compile")(images), expected, atol=1e-4, rtol=1e-4)


def test_backend_errors_are_clear():
    model = small_model()
    with pytest.raises(ConfigError, match="did you mean 'onnx'"):
        with_backend(model, "onx")
    with pytest.raises(ConfigError, match="float32 only"):
        with_backend(model, "onnx", "bf16")
    eager = with_backend(model, "eager")
    with pytest.raises(RuntimeError, match="inference only"):
        eager.train()


def test_export_cli_writes_a_loadable_onnx_file_and_refuses_to_overwrite(tmp_path):
    pytest.importorskip("onnxruntime")
    model = small_model()
    pixelseg.save_model(model, tmp_path / "model")
    target = tmp_path / "model.onnx"
    exported = run_cli("export", tmp_path / "model", target, "--check-size", "64,96")
    assert exported.returncode == 0, exported.stderr
    assert "100.000 % of pixels with the same class" in exported.stdout
    loaded = pixelseg.load(target)
    assert loaded.backend == "onnx" and loaded.classes.num_classes == 5
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    assert np.array_equal(loaded.predict(image).labels, model.predict(image).labels)

    before = target.read_bytes()
    again = run_cli("export", tmp_path / "model", target)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr and "Traceback" not in again.stderr
    assert target.read_bytes() == before
    wrong = run_cli("export", tmp_path / "model", tmp_path / "model.pt")
    assert wrong.returncode == 2 and "must end in .onnx" in wrong.stderr


def test_a_broken_onnx_file_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="broken.onnx: not a readable ONNX model"):
        pixelseg.load(broken)


def test_predict_cli_backends_write_the_same_labels(tmp_path):
    pytest.importorskip("onnxruntime")
    pixelseg.save_model(small_model(), tmp_path / "model")
    image = np.random.default_rng(1).integers(0, 255, (45, 61, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "a.png", image)
    labels = {}
    for backend in ("eager", "onnx"):
        result = run_cli("--quiet", "predict", tmp_path / "in", "--model", tmp_path / "model", "--backend", backend,
                         "--out", tmp_path / backend)
        assert result.returncode == 0, result.stderr
        assert f"on {backend} (fp32)" in result.stdout
        labels[backend] = (tmp_path / backend / "a_labels.png").read_bytes()
    assert labels["eager"] == labels["onnx"]


def test_batched_sliding_windows_equal_one_window_at_a_time():
    model = small_model()
    images = torch.randn(2, 3, 100, 150)
    with torch.inference_mode():
        one = sliding_window_logits(model, images, (64, 64), 0.33, window_batch=1)
        batched = sliding_window_logits(model, images, (64, 64), 0.33, window_batch=4)
    assert torch.allclose(one, batched, atol=1e-4)


def test_flip_augmentation_shares_a_pass_and_averages_the_mirror():
    model = small_model()
    images = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        plain = model(images).softmax(1)
        mirrored = model(images.flip(-1)).softmax(1).flip(-1)
        expected = torch.log((plain + mirrored) / 2 + 1e-12)
        assert torch.allclose(predict_logits(model, images, flip=True), expected, atol=1e-4)


def test_pipelined_folder_prediction_writes_what_the_plain_loop_writes(tmp_path):
    model = small_model()
    rng = np.random.default_rng(2)
    for index in range(5):
        write_image(tmp_path / "in" / f"{index}.png", rng.integers(0, 255, (40, 52, 3), dtype=np.uint8))
    (tmp_path / "in" / "2.png").write_bytes(b"broken")  # reported and skipped, the others still written
    results = {prefetch: predict_files(model, [tmp_path / "in"], tmp_path / f"out{prefetch}", progress=False,
                                       prefetch=prefetch) for prefetch in (0, 2)}
    for summary in results.values():
        assert len(summary.written) == 12 and len(summary.failed) == 1 and "2.png" in summary.failed[0]
    for path in sorted((tmp_path / "out0").iterdir()):
        assert path.read_bytes() == (tmp_path / "out2" / path.name).read_bytes()


def test_decoded_image_cache_gives_the_same_samples_read_only(shapes_root):
    plain = open_dataset("folder", shapes_root, "train")
    cached = open_dataset("folder", shapes_root, "train")
    held = cached.cache_in_memory(progress=False)
    assert held == sum(a.nbytes + b.nbytes for a, b in (plain.read(i) for i in range(len(plain))))
    for index in range(len(plain)):
        for mine, theirs in zip(cached.read(index), plain.read(index), strict=True):
            assert np.array_equal(mine, theirs) and not mine.flags.writeable


def test_training_with_the_cache_equals_training_without(shapes_root, tmp_path):
    from pixelseg.engine import train
    from pixelseg.engine.config import config_from_dict
    from tests.conftest import tiny_config

    weights = {}
    for cache in (False, True):
        config = tiny_config(shapes_root, tmp_path / str(cache), epochs=1)
        config["data"]["cache"] = cache
        run = train(config_from_dict(config), progress=False)
        weights[cache] = torch.load(run / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(weights[False][k], weights[True][k]) for k in weights[False])


@pytest.mark.slow  # exports the shipped network to ONNX: about 5 minutes of the suite's 10 on 2 cores
@pytest.mark.realdata
def test_backends_give_the_same_class_maps_on_real_street_scenes():
    pytest.importorskip("onnxruntime")
    images = sorted((requires_shared("camvid") / "val").glob("*.png"))[::25]
    model = pixelseg.load("camvid")
    reference = [predict_image(model, path).labels for path in images]
    for backend in ("eager", "onnx"):
        runner = with_backend(model, backend)
        same = sum(int((predict_image(runner, p).labels == r).sum()) for p, r in zip(images, reference, strict=True))
        assert same / sum(r.size for r in reference) >= 0.999, backend


def test_int8_export_quantises_per_channel_and_keeps_the_metadata(tmp_path):
    import onnx

    from tests.test_cli import pixelseg as run_cli

    model = create("unet", num_classes=3, encoder="regnetx_002", decoder_channels=[32, 16, 16, 8, 8]).eval()
    model.meta["classes"] = {"names": ["a", "b", "c"], "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}
    save_model(model, tmp_path / "model")
    rng = np.random.default_rng(0)
    for index in range(4):
        write_image(tmp_path / "calibration" / f"{index}.png", rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    missing = run_cli("export", tmp_path / "model", tmp_path / "x.onnx", "--int8")
    assert missing.returncode == 2 and "--int8 needs --calibrate" in missing.stderr
    result = run_cli("export", tmp_path / "model", tmp_path / "int8.onnx", "--int8", "--calibrate",
                     tmp_path / "calibration")
    assert result.returncode == 0, result.stderr
    assert "calibrated on 4 images" in result.stdout
    graph = onnx.load(str(tmp_path / "int8.onnx"))
    assert sum(node.op_type == "QuantizeLinear" for node in graph.graph.node) > 20
    weights_scales = [init for init in graph.graph.initializer if init.name.endswith("_scale") and init.dims]
    assert weights_scales, "per-channel weight scales"
    quantised = pixelseg.load(tmp_path / "int8.onnx")
    assert (quantised.backend, quantised.precision) == ("onnx", "int8") and quantised.classes.names == ["a", "b", "c"]
    image = rng.integers(0, 255, (70, 100, 3), dtype=np.uint8)
    assert quantised.predict(image).labels.shape == (70, 100)
