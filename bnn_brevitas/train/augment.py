# SPDX-License-Identifier: BSD-3-Clause
"""Batch augmentation on the training device with kornia (images in [0, 1], NCHW).

=============  ==========================================================================
``augment``    pipeline
=============  ==========================================================================
``none``       identity
``crop``       random crop with zero padding (size/7, i.e. 4 px at 28 px): safe for digits
``light``      ``crop`` + horizontal flip (p = 0.5): the default for Fashion-MNIST
``randaugment``  random-resized crop (scale 0.08–1 at ≥ 64 px, else padded crop) + flip +
               RandAugment with 2 ops at BNext's magnitude 7 (timm's 0–10 scale; kornia's
               0–30 scale is 3× that)
``auto``       fashion_mnist → light, mnist_idx → crop, cifar10 / imagefolder → randaugment,
               synthetic → none
=============  ==========================================================================

All randomness comes from torch's global RNG, which the checkpoints save and restore.
"""

from __future__ import annotations

from torch import Tensor, nn

AUTO = {"fashion_mnist": "light", "mnist_idx": "crop", "cifar10": "randaugment",
        "imagefolder": "randaugment", "synthetic": "none"}


def resolve_augment(kind: str, dataset: str) -> str:
    """The concrete pipeline name for ``kind`` (``auto`` depends on the dataset)."""
    return AUTO[dataset] if kind == "auto" else kind


class Augment(nn.Module):
    """A kornia pipeline applied to a whole batch; values stay in [0, 1]."""

    def __init__(self, ops: list[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor) -> Tensor:
        for op in self.ops:
            x = op(x)
        return x.clamp_(0.0, 1.0)


def build_augment(kind: str, img_size: int, magnitude: int = 7) -> Augment | None:
    """The training augmentation ``kind`` (already resolved, not ``auto``) or None."""
    import kornia.augmentation as K

    if kind == "none":
        return None
    pad = max(img_size // 7, 1)
    crop = K.RandomCrop((img_size, img_size), padding=pad)
    if kind == "crop":
        return Augment([crop])
    flip = K.RandomHorizontalFlip(p=0.5)
    if kind == "light":
        return Augment([crop, flip])
    if kind == "randaugment":
        from kornia.augmentation.auto import RandAugment

        if img_size >= 64:
            crop = K.RandomResizedCrop((img_size, img_size), scale=(0.08, 1.0),
                                       resample="bicubic")
        return Augment([crop, flip, RandAugment(n=2, m=3 * magnitude)])
    raise ValueError(f"unknown augmentation {kind!r}")
