# SPDX-License-Identifier: BSD-3-Clause
"""Samplers and DataLoaders that make a run exactly resumable, alone or under DDP.

* Training order comes from ``ResumableSampler`` (a ``DistributedSampler``): the permutation of
  epoch ``e`` depends only on ``(seed, e)``, and ``skip`` drops the batches an interrupted epoch
  already consumed. The loader gets its own seeded generator, so creating an iterator never
  touches the global RNG (which drives augmentation and is saved in checkpoints).
* Evaluation uses ``ShardSampler``: rank r takes samples r, r+W, r+2W…, without the padding a
  ``DistributedSampler`` adds, so the summed counts are exactly the test set.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled, ``drop_last``) that can skip already-seen samples."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class ShardSampler(Sampler[int]):
    """Deterministic rank-strided shard of ``range(n)``, no padding, no shuffling."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, n, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def local_batch_size(batch_size: int, world_size: int) -> int:
    """The per-process share of the global batch size."""
    return max(batch_size // world_size, 1)


def steps_per_epoch(n_samples: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps per epoch (per process: drop_last on every rank's equal shard)."""
    per_rank = n_samples // world_size
    return per_rank // local_batch_size(batch_size, world_size)


def train_loader(dataset: Dataset, batch_size: int, world_size: int, rank: int, seed: int,
                 workers: int, pin_memory: bool = False) -> DataLoader:
    sampler = ResumableSampler(dataset, world_size, rank, seed)
    return DataLoader(dataset, batch_size=local_batch_size(batch_size, world_size),
                      sampler=sampler, drop_last=True, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=False,
                      generator=torch.Generator().manual_seed(seed))


def test_loader(dataset: Dataset, batch_size: int, world_size: int, rank: int, workers: int,
                pin_memory: bool = False) -> DataLoader:
    sampler = ShardSampler(len(dataset), world_size, rank)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(0))


def start_epoch(loader: DataLoader, epoch: int, skip_batches: int = 0) -> None:
    """Select the permutation of ``epoch`` and skip the first ``skip_batches`` batches of it."""
    sampler = loader.sampler
    assert isinstance(sampler, ResumableSampler)
    sampler.set_epoch(epoch)
    sampler.skip = skip_batches * loader.batch_size
    loader.generator.manual_seed(sampler.seed + epoch)
