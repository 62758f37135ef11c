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
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    accuracy = 0.0
    for step in range(MAX_STEPS):
        outputs = model(images)
        logits = outputs[0] if isinstance(outputs, tuple) else outputs
        loss = torch.nn.functional.cross_entropy(logits, masks)
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
