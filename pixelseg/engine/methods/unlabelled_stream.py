"""An endless, resumable stream of weakly augmented unlabelled batches (``data.unlabelled``) for a training method."""

from __future__ import annotations

import torch

from pixelseg.data.unlabelled import UnlabelledImages
from pixelseg.errors import ConfigError


class UnlabelledStream:
    """Batches of the unlabelled folder in a seeded shuffle per pass (this rank's share under DDP), the same crop
    and geometric augmentation as the labelled data and no colour jitter (the weak view). Remembers its pass and
    position, so ``--resume`` continues with the same batches."""

    def __init__(self, run, batch: int | None = None) -> None:
        config = run.config
        if not config.data.unlabelled:
            raise ConfigError(f"method {config.method.name!r} needs data.unlabelled: a folder of images without labels")
        data = config.data
        transform = data.augmentation(run.model.meta["mean"], run.model.meta["std"], labelled=False)
        self.dataset = UnlabelledImages(data.unlabelled, run.train_set.classes.num_classes, run.train_set.channels,
                                        transform)
        self.dataset.seed = config.train.seed
        self.batch = batch or config.train.batch_size // run.context.world_size
        if len(self.dataset) < self.batch * run.context.world_size:
            raise ConfigError(f"data.unlabelled: {data.unlabelled} has {len(self.dataset)} images, fewer than one "
                              f"batch of {self.batch} per process")
        self.run, self.epoch, self.position, self.iterator = run, 0, 0, None

    def _start(self) -> None:
        context = self.run.context
        sampler = torch.utils.data.DistributedSampler(self.dataset, num_replicas=context.world_size, rank=context.rank,
                                                      shuffle=True, seed=self.run.config.train.seed, drop_last=True)
        sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        order = list(sampler)[self.position * self.batch:]
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=self.batch, sampler=order, drop_last=True,
                                             num_workers=self.run.config.data.workers)
        self.iterator = iter(loader)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.iterator is None:
            self._start()
        try:
            images, valid = next(self.iterator)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._start()
            images, valid = next(self.iterator)
        self.position += 1
        device = self.run.device
        return images.to(device), valid.to(device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self.iterator = int(state["epoch"]), int(state["position"]), None
