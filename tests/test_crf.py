"""Dense CRF, permutohedral lattice, CRF-as-RNN and grid CRF."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelseg.crf import DenseCRF, PermutohedralLattice, mean_field, mean_field_energy
from pixelseg.crf.dense import GaussianKernel, appearance_features, smoothness_features
from pixelseg.crf.grid import grid_crf_graphcut, grid_crf_mean_field
from pixelseg.io import read_image
from tests.conftest import requires_shared


def noisy_scene(seed: int = 0, height: int = 60, width: int = 80):
    """An image of two colours, the truth, and probabilities that are right 75 % of the time per pixel."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((height, width), np.int64)
    truth[15:45, 20:60] = 1
    image = np.where(truth[..., None] == 1, [200, 60, 40], [40, 90, 200]).astype(np.uint8)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    correct = rng.random(truth.shape) < 0.75
    confidence = rng.uniform(0.55, 0.7, truth.shape)
    p1 = np.where(correct == (truth == 1), confidence, 1 - confidence)
    return image, truth, np.stack([1 - p1, p1]).astype(np.float32)


def test_lattice_filter_approximates_the_exact_gaussian():
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.uniform(0, 4, (400, 3)).astype(np.float32))
    values = torch.from_numpy(rng.random((2, 400)).astype(np.float32))
    exact = values @ torch.exp(-0.5 * torch.cdist(features, features) ** 2).T
    approximate = PermutohedralLattice(features).filter(values)
    # The lattice blurs with a slightly different kernel shape; up to a scale the two must agree closely.
    scale = (approximate * exact).sum() / (approximate * approximate).sum()
    relative = ((scale * approximate - exact).norm() / exact.norm()).item()
    assert relative < 0.1, relative


def test_dense_crf_cleans_noisy_probabilities():
    image, truth, probabilities = noisy_scene()
    before = (probabilities.argmax(0) == truth).mean()
    refined = DenseCRF()(image, torch.from_numpy(probabilities))
    after = (refined.argmax(0).numpy() == truth).mean()
    assert before < 0.8 and after > 0.97, (before, after)
    assert torch.allclose(refined.sum(0), torch.ones(truth.shape), atol=1e-4)


def test_dense_crf_rejects_mismatched_inputs():
    image, _, probabilities = noisy_scene()
    with pytest.raises(ValueError, match="image is"):
        DenseCRF()(image[:-1], torch.from_numpy(probabilities))


@pytest.mark.realdata
def test_dense_crf_agrees_with_pydensecrf_and_energy_falls_on_camvid():
    pydensecrf = pytest.importorskip("pydensecrf.densecrf")
    from pydensecrf.utils import unary_from_softmax

    files = sorted((requires_shared("camvid") / "val").glob("*.png"))[:2]
    for number, path in enumerate(files):
        image = read_image(path)
        height, width = image.shape[:2]
        # Probabilities as a weak model gives them: smoothed noisy per-colour class scores, 11 classes.
        generator = torch.Generator().manual_seed(number)
        logits = torch.nn.functional.avg_pool2d(torch.randn(1, 11, height, width, generator=generator), 9, 1, 4)[0]
        logits += torch.from_numpy(image[..., :1].astype(np.float32)).permute(2, 0, 1) / 64 * torch.arange(11).view(
            11, 1, 1) / 11
        probabilities = torch.softmax(3 * logits, 0).numpy().astype(np.float32)

        reference = pydensecrf.DenseCRF2D(width, height, 11)
        reference.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probabilities)))
        reference.addPairwiseGaussian(sxy=3, compat=3)
        reference.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.ascontiguousarray(image), compat=10)
        expected = np.array(reference.inference(5)).reshape(11, height, width).argmax(0)

        crf = DenseCRF()
        ours = crf(image, torch.from_numpy(probabilities)).argmax(0).numpy()
        agreement = (ours == expected).mean()
        assert agreement >= 0.99, agreement
        assert (expected != probabilities.argmax(0)).mean() > 0.01  # the CRF changed something worth agreeing on

        kernels, compatibilities = crf.setup(torch.from_numpy(image))
        unary = crf.unary(torch.from_numpy(probabilities))
        energies = [mean_field_energy(unary, mean_field(unary, kernels, compatibilities, steps), kernels,
                                      compatibilities) for steps in range(6)]
        assert all(b < a for a, b in zip(energies, energies[1:], strict=False)), energies


def test_kernel_normalisation_is_symmetric_and_runs_on_every_feature_set():
    image, _, _ = noisy_scene(height=20, width=30)
    for features in (smoothness_features(20, 30, 3.0), appearance_features(torch.from_numpy(image), 80, 13)):
        kernel = GaussianKernel(features)
        ones = torch.ones(1, features.shape[0])
        # A symmetric normalisation makes the filtered ones close to 1 on a uniform region.
        assert 0.5 < float(kernel(ones).median()) < 1.5


def test_crf_as_rnn_learns_end_to_end():
    from pixelseg.models import create

    torch.manual_seed(0)
    model = create("crfasrnn", num_classes=2, base="unet", encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8])
    image, truth, _ = noisy_scene(height=33, width=45)
    images = ((torch.from_numpy(image).permute(2, 0, 1).float() / 255 - 0.45) / 0.225).unsqueeze(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    start = model.crf.compatibility.detach().clone()
    with torch.inference_mode():  # a prediction first (validation, a benchmark) caches the smoothness kernel;
        model.eval()(images)      # training must still be able to use it
    losses = []
    model.train()
    for _ in range(6):
        logits = model(images)
        assert logits.shape == (1, 2, 33, 45)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(truth).unsqueeze(0))
        optimizer.zero_grad()
        loss.backward()
        assert model.crf.appearance_weights.grad.abs().sum() > 0
        assert model.base.encoder.model.conv1.weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not torch.equal(start, model.crf.compatibility)


def test_crf_as_rnn_trains_and_predicts_under_bf16_autocast():
    from pixelseg.models import create

    torch.manual_seed(0)
    model = create("crfasrnn", num_classes=3, base="unet", encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8])
    images = torch.randn(2, 3, 32, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    assert logits.shape == (2, 3, 32, 40) and torch.isfinite(logits).all()
    logits.float().sum().backward()
    assert model.crf.compatibility.grad.abs().sum() > 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.eval()(images).shape == (2, 3, 32, 40)


def test_grid_crf_graph_cut_and_mean_field_remove_noise():
    _, truth, probabilities = noisy_scene()
    before = (probabilities.argmax(0) == truth).mean()
    for connectivity in (4, 8):
        cut = grid_crf_graphcut(probabilities, weight=1.0, connectivity=connectivity)
        field = grid_crf_mean_field(torch.from_numpy(probabilities), weight=1.0, connectivity=connectivity)
        assert (cut == truth).mean() > before + 0.1
        assert (field.argmax(0).numpy() == truth).mean() > before + 0.1
    # Three classes (alpha-expansion): each pixel favours its true class 75 % of the time, else a wrong one.
    rng = np.random.default_rng(1)
    truth3 = truth.copy()
    truth3[:, 65:] = 2
    favoured = np.where(rng.random(truth3.shape) < 0.75, truth3, (truth3 + rng.integers(1, 3, truth3.shape)) % 3)
    three = np.full((3, *truth3.shape), 0.2, np.float32)
    np.put_along_axis(three, favoured[None], 0.6, 0)
    assert (grid_crf_graphcut(three, weight=1.0) == truth3).mean() > 0.95


def test_scaled_points_fold_the_normalisation_into_the_filter():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(500, 3, generator=generator) * 4
    values = torch.rand(500, 4, generator=generator)
    scale = torch.rand(500, generator=generator) + 0.5
    plain = PermutohedralLattice(features)
    expected = scale[:, None] * plain.filter_rows(values * scale[:, None])
    assert torch.allclose(plain.filter(values.T).T, plain.filter_rows(values), atol=1e-5)
    scaled = PermutohedralLattice(features)
    scaled.scale_points(scale)
    assert torch.allclose(scaled.filter_rows(values), expected, atol=1e-5)


def test_softmax_rows_equals_torch_softmax():
    from pixelseg.crf.dense import softmax_rows

    logits = torch.randn(1000, 11) * 30
    assert torch.allclose(softmax_rows(logits), torch.softmax(logits, 1), atol=1e-6)


@pytest.mark.parametrize("dim", [2, 5])
def test_compiled_lattice_filters_as_the_tensor_lattice(dim):
    """The numba construction (CPU default) and the tensor one (CUDA, fallback) build the same lattice: same
    size, same filtering in both blur orders, before and after the points are scaled."""
    generator = torch.Generator().manual_seed(dim)
    features = torch.rand(3000, dim, generator=generator) * 6
    values = torch.rand(3000, 7, generator=generator)
    scale = torch.rand(3000, generator=generator) + 0.5
    compiled, tensors = PermutohedralLattice(features, compiled=True), PermutohedralLattice(features, compiled=False)
    assert compiled.compiled and not tensors.compiled
    assert compiled.size == tensors.size
    for reverse in (False, True):
        assert torch.allclose(compiled.filter_rows(values, reverse), tensors.filter_rows(values, reverse), atol=1e-5)
    compiled.scale_points(scale)
    tensors.scale_points(scale)
    assert torch.allclose(compiled.filter_rows(values), tensors.filter_rows(values), atol=1e-5)


def test_splat_matrix_order_does_not_depend_on_the_thread_count():
    """The splat matrix's counting sort runs in chunks of points (one per thread): any number of chunks gives the
    serial pass's CSR arrays, each lattice point's entries in point order."""
    from pixelseg.crf import lattice_cpu

    offsets = np.random.default_rng(0).integers(0, 50, (1001, 3))
    weights = np.random.default_rng(1).random((1001, 3), dtype=np.float32)
    serial = lattice_cpu._group(offsets, weights, 50, 1)
    assert np.all(np.diff(serial[1][serial[0][7]:serial[0][8]]) >= 0)  # a row's points ascend
    for chunks in (2, 3, 8):
        assert all(np.array_equal(a, b) for a, b in zip(serial, lattice_cpu._group(offsets, weights, 50, chunks),
                                                         strict=True))


def test_compiled_lattice_still_gives_gradients():
    """Values that need a gradient (CRF-as-RNN training) take the differentiable tensor path of the same lattice."""
    generator = torch.Generator().manual_seed(1)
    features = torch.rand(800, 3, generator=generator) * 4
    lattices = PermutohedralLattice(features, compiled=True), PermutohedralLattice(features, compiled=False)
    gradients = []
    for lattice in lattices:
        values = torch.rand(800, 4, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        (lattice.filter_rows(values) ** 2).sum().backward()
        gradients.append(values.grad)
    assert gradients[0].abs().sum() > 0
    assert torch.allclose(gradients[0], gradients[1], atol=1e-4)


@pytest.mark.parametrize("classes", [2, 4, 11])
def test_compiled_mean_field_equals_the_tensor_mean_field(classes):
    """The all-compiled Potts mean field (padded to whole SIMD rows of classes) against the tensor update."""
    rng = np.random.default_rng(classes)
    image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    probabilities = torch.from_numpy(rng.dirichlet(np.ones(classes), size=40 * 50).T.astype(np.float32))
    crf = DenseCRF()
    kernels, compatibilities = crf.setup(torch.from_numpy(image))
    assert all(kernel.lattice.compiled for kernel in kernels)
    unary = crf.unary(probabilities.reshape(classes, 40, 50))
    fast = mean_field(unary, kernels, compatibilities, 5)
    tensor_path = mean_field(unary.clone().requires_grad_(True), kernels, compatibilities, 5).detach()
    assert fast.shape == (classes, 40 * 50)
    assert torch.allclose(fast.sum(0), torch.ones(40 * 50), atol=1e-5)
    assert torch.allclose(fast, tensor_path, atol=1e-5)


def test_the_compiled_crf_keeps_the_users_thread_count():
    """Launching numba's OpenMP pool resets PyTorch's thread count (shared OpenMP runtime): in a fresh process,
    torch.set_num_threads(1) must hold after a CRF, which then runs on one thread too."""
    import subprocess
    import sys

    code = ("import numba, numpy as np, torch\nfrom pixelseg.crf import DenseCRF\ntorch.set_num_threads(1)\n"
            "p = torch.full((2, 20, 30), 0.5)\nDenseCRF()(np.zeros((20, 30, 3), np.uint8), p)\n"
            "print(torch.get_num_threads(), numba.get_num_threads())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.split() == ["1", "1"]
