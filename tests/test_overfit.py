"""Every architecture can overfit one small batch: pixel accuracy above 0.95 within a bounded number of steps.

Slow (a few minutes for the whole registry on 2 cores): run with `make test-slow` (pytest -m slow).
"""

from __future__ import annotations

import pytest
import torch

from pixelseg.models import create
from tests.test_models import SMALL

pytestmark = pytest.mark.slow
MAX_STEPS = 200
# FCN-32s/16s predict a stride-32/16 score map and upsample it with fixed bilinear interpolation (as in the paper):
# on 64x64 images the 10-pixel bars are a third of one stride-32 cell (0.66 / 0.86 pixel accuracy after 200
# steps). Their batch is the same scene enlarged 4x (256x256), where each shape spans whole cells.
# The same for the stride-16 ViT designs (SETR, Segmenter: 16x16 patches) and, at 2x, the stride-8 VGG16 networks
# (DeepLab v1, Dilation), which without batch norm (as in their papers) also need a smaller Adam step than 3e-3
# (at 64x64 and 3e-3: 0.89 / 0.73 pixel accuracy; SETR 0.86, Segmenter 0.65).
SCENE_SCALE = {"fcn32s": 4, "fcn16s": 4, "setr": 4, "segmenter": 4, "dpt": 4, "deeplabv1": 2, "dilation": 2}
LEARNING_RATE = {"deeplabv1": 1e-3, "dilation": 3e-4}


def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 64x64 images: a bright square (class 1) and a dark bar (class 2) on a mid-grey background (class 0)."""
    generator = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 64, 64, dtype=torch.long)
    masks[0, 10:40, 12:44] = 1
    masks[0, 48:58, 4:60] = 2
    masks[1, 20:54, 30:60] = 1
    masks[1, 4:14, 8:40] = 2
    levels = torch.tensor([0.0, 1.5, -1.5])
    images = levels[masks].unsqueeze(1).expand(2, 3, 64, 64) + 0.2 * torch.randn(2, 3, 64, 64, generator=generator)
    return images.contiguous(), masks


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_tiny_batch_can_be_overfitted(name):
    torch.manual_seed(0)
    model = create(name, num_classes=3, **SMALL[name]).train()
    images, masks = tiny_batch()
    if scale := SCENE_SCALE.get(name):
        images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
        masks = torch.nn.functional.interpolate(masks[:, None].float(), scale_factor=scale, mode="nearest")[:, 0].long()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE.get(name, 3e-3))
    accuracy = 0.0
    for step in range(MAX_STEPS):
        loss = model.training_loss(torch.nn.CrossEntropyLoss(), model(images), masks)  # MaskFormer: its own loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            model.eval()
            with torch.no_grad():
                accuracy = (model(images).argmax(1) == masks).float().mean().item()
            model.train()
            if accuracy > 0.95:
                break
    assert accuracy > 0.95, f"{name}: pixel accuracy {accuracy:.3f} after {MAX_STEPS} steps"
