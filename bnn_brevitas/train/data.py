# SPDX-License-Identifier: BSD-3-Clause
"""Datasets, read from local files only (nothing is ever downloaded).

=================  =========================================================================
``dataset``        what ``data_dir`` holds
=================  =========================================================================
``fashion_mnist``  the four IDX files; default: Debian's ``dataset-fashion-mnist`` package
                   (``/usr/share/datasets/fashion-mnist``)
``mnist_idx``      any directory with the four MNIST-style IDX files (``.gz`` or raw):
                   ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (``images.idx3`` also ok)
``cifar10``        the python-pickle CIFAR-10 directory (``data_batch_1..5``, ``test_batch``) or
                   its parent holding ``cifar-10-batches-py/``
``imagefolder``    an ImageFolder / ImageNet tree: ``train/<class>/*.png|jpg…`` and
                   ``val/<class>/…`` (or ``test/``); images are resized (bicubic, shorter side
                   to img_size/0.95) and centre-cropped to the model's img_size
``synthetic``      nothing: seeded class templates plus noise, in the model's input shape
=================  =========================================================================

Images are kept as uint8 ``(C, H, W)`` tensors; the training loop scales them to [0, 1] (the
input range every model of the registry expects, see ``bnn_brevitas.quant.InputQuant``).

**Validation split** (``split_train_val``): ``val_samples`` images of the training split are
held out for model selection: the first ``val_samples`` of a permutation seeded by ``seed``,
and the training subset (``max_train_samples``, or all the rest) comes from the remainder, so
the two never overlap and the same seed gives the same split. ``synthetic`` generates its
validation images on top of its training images. The test split is never used for selection.
"""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UnknownNameError, UserError

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MISSING_FASHION_MNIST = ("install Debian's dataset-fashion-mnist (apt-get install "
                         "dataset-fashion-mnist) or pass --data-dir DIR with the four IDX files")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
EVAL_CROP_PCT = 0.95  # BNext's evaluation crop


class ArrayDataset(Dataset):
    """In-memory images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8 or len(images) != len(labels):
            raise UserError(f"expected uint8 images (N, C, H, W) and N labels, got "
                            f"{tuple(images.shape)} {images.dtype} and {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def subset(self, idx: torch.Tensor) -> ArrayDataset:
        return ArrayDataset(self.images[idx], self.labels[idx])


class FolderDataset(Dataset):
    """Images read lazily from files, resized and centre-cropped to ``size`` (uint8 RGB)."""

    def __init__(self, samples: list[tuple[Path, int]], size: int) -> None:
        self.samples, self.size = samples, size
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            im = im.convert("RGB")
            short = round(self.size / EVAL_CROP_PCT)
            w, h = im.size
            scale = short / min(w, h)
            im = im.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                           Image.BICUBIC)
            left, top = (im.size[0] - self.size) // 2, (im.size[1] - self.size) // 2
            im = im.crop((left, top, left + self.size, top + self.size))
            x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)
        return x, self.labels[i]

    def subset(self, idx: torch.Tensor) -> FolderDataset:
        return FolderDataset([self.samples[i] for i in idx.tolist()], self.size)


@dataclass
class DataBundle:
    """The splits and the shape they impose on the model (``img_size`` None: the model's);
    ``val`` is None without a validation split."""

    name: str
    train: ArrayDataset | FolderDataset
    test: ArrayDataset | FolderDataset
    in_channels: int
    img_size: int | None
    num_classes: int
    source: str
    val: ArrayDataset | FolderDataset | None = None


# ------------------------------------------------------------------------------------ IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw): unsigned-byte data of any rank."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read IDX file {str(path)!r}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{str(path)!r} is truncated: header says {dims}, "
                        f"file holds {body.size} values")
    return body.reshape(dims)


def _find_idx(root: Path, split: str, kind: str) -> Path | None:
    stem = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}[kind]
    for name in (f"{split}-{stem}", f"{split}-{stem.replace('-idx', '.idx', 1)}"):
        for suffix in (".gz", ""):
            if (root / (name + suffix)).is_file():
                return root / (name + suffix)
    return None


def load_idx_dir(root: str | Path, what: str = "MNIST-style IDX") -> tuple[ArrayDataset, ...]:
    """(train, test) from a directory holding the four IDX files."""
    root = Path(root)
    parts = {}
    for split in ("train", "t10k"):
        for kind in ("images", "labels"):
            path = _find_idx(root, split, kind)
            if path is None:
                raise UserError(f"{what}: no {split}-{kind} IDX file in {str(root)!r}; expected "
                                f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte[.gz]")
            parts[split, kind] = read_idx(path)
    out = []
    for split in ("train", "t10k"):
        x, y = parts[split, "images"], parts[split, "labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise UserError(f"{what} in {str(root)!r}: {split} images {x.shape} and labels "
                            f"{y.shape} do not form (N, H, W) / (N,)")
        out.append(ArrayDataset(torch.from_numpy(x.copy()).unsqueeze(1),
                                torch.from_numpy(y.astype(np.int64))))
    return tuple(out)


# -------------------------------------------------------------------------------- CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a CIFAR batch file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module.split(".", 2)[2]
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise UserError(f"cannot read CIFAR-10 batch {str(path)!r}: {e}") from None
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return x, np.asarray(d["labels"], dtype=np.int64)


def load_cifar10(root: str | Path) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test) from the python-pickle CIFAR-10 directory."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise UserError(f"cifar10: {', '.join(missing)} missing in {str(root)!r} (expected the "
                        "python version of CIFAR-10: data_batch_1..5 and test_batch)")
    batches = [_read_cifar_batch(root / n) for n in names]
    tx = np.concatenate([b[0] for b in batches[:5]])
    ty = np.concatenate([b[1] for b in batches[:5]])
    return (ArrayDataset(torch.from_numpy(tx), torch.from_numpy(ty)),
            ArrayDataset(torch.from_numpy(batches[5][0]), torch.from_numpy(batches[5][1])))


# ----------------------------------------------------------------------------- ImageFolder


def _scan_split(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    samples = []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                samples.append((path, label))
    return samples


def load_imagefolder(root: str | Path, size: int) -> tuple[FolderDataset, FolderDataset, int]:
    """(train, test, number of classes) from ``root/train/<class>/`` and ``root/val/<class>/``."""
    root = Path(root)
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise UserError(f"imagefolder: {str(root)!r} must hold train/<class>/ and val/<class>/ "
                        "(or test/<class>/) directories")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if len(classes) < 2:
        raise UserError(f"imagefolder: {str(root / 'train')!r} needs ≥ 2 class directories")
    extra = sorted(p.name for p in test_dir.iterdir() if p.is_dir() and p.name not in classes)
    if extra:
        raise UserError(f"imagefolder: classes {extra} of {str(test_dir)!r} are not in train/")
    train, test = _scan_split(root / "train", classes), _scan_split(test_dir, classes)
    if not train or not test:
        raise UserError(f"imagefolder: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return FolderDataset(train, size), FolderDataset(test, size), len(classes)


# ------------------------------------------------------------------------------- synthetic


def synthetic_data(shape: tuple[int, int, int], num_classes: int, n_train: int, n_test: int,
                   seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """Learnable toy data: one random binary template per class, 25 % of pixels replaced by noise."""
    g = torch.Generator().manual_seed(seed)
    templates = (torch.rand(num_classes, *shape, generator=g) > 0.5).to(torch.uint8) * 255

    def make(n: int) -> ArrayDataset:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        noise = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
        keep = torch.rand(n, *shape, generator=g) > 0.25
        return ArrayDataset(torch.where(keep, templates[labels], noise), labels)

    return make(n_train), make(n_test)


# ---------------------------------------------------------------------------------- entry


def _subset(ds: ArrayDataset | FolderDataset, n: int | None, seed: int
            ) -> ArrayDataset | FolderDataset:
    if n is None or n >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    return ds.subset(torch.randperm(len(ds), generator=g)[:n].sort().values)


def split_train_val(ds: ArrayDataset | FolderDataset, n_val: int, n_train: int | None, seed: int
                    ) -> tuple[ArrayDataset | FolderDataset, ArrayDataset | FolderDataset | None]:
    """(train, validation) from one training split (see the module docstring): disjoint,
    both in index order, the same for the same seed; validation is None when ``n_val`` is 0."""
    if n_val == 0:
        return _subset(ds, n_train, seed), None
    if n_val >= len(ds):
        raise UserError(f"val_samples: {n_val} validation images leave none of the {len(ds)} "
                        f"training images for training; lower --val-samples (0: no split)")
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    rest = perm[n_val:] if n_train is None else perm[n_val:n_val + n_train]
    return ds.subset(rest.sort().values), ds.subset(perm[:n_val].sort().values)


def _need_dir(data_dir: str | None, name: str, what: str) -> str:
    if data_dir is None:
        raise UserError(f"{name} needs --data-dir DIR ({what})")
    return data_dir


def _array_bundle(name: str, train: ArrayDataset, test: ArrayDataset, source: str,
                  req: DataRequest) -> DataBundle:
    """A bundle of in-memory square images; the class count is read off the labels."""
    c, h, w = train.images.shape[1:]
    if h != w:
        raise UserError(f"{name}: images are {h}×{w}; only square images are supported")
    n_cls = int(max(train.labels.max(), test.labels.max())) + 1
    train, val = split_train_val(train, req.val_samples, req.max_train, req.seed)
    return DataBundle(name, train, _subset(test, req.max_test, req.seed), c, h, n_cls, source,
                      val)


@dataclass(frozen=True)
class DataRequest:
    """What a dataset loader is asked for: where the data is and what the model takes."""

    data_dir: str | None
    model_shape: tuple[int, int, int]
    model_classes: int
    max_train: int | None = None
    max_test: int | None = None
    seed: int = 0
    val_samples: int = 0


def _fashion_mnist(req: DataRequest) -> DataBundle:
    root = Path(req.data_dir) if req.data_dir else FASHION_MNIST_DIR
    if req.data_dir is None and _find_idx(root, "t10k", "labels") is None:
        raise UserError(f"Fashion-MNIST not found in {root}: {MISSING_FASHION_MNIST}")
    return _array_bundle("fashion_mnist", *load_idx_dir(root, "Fashion-MNIST"), str(root), req)


def _mnist_idx(req: DataRequest) -> DataBundle:
    root = _need_dir(req.data_dir, "mnist_idx", "the four MNIST-style IDX files")
    return _array_bundle("mnist_idx", *load_idx_dir(root), root, req)


def _cifar10(req: DataRequest) -> DataBundle:
    root = _need_dir(req.data_dir, "cifar10", "the python-pickle CIFAR-10 directory")
    return _array_bundle("cifar10", *load_cifar10(root), root, req)


def _imagefolder(req: DataRequest) -> DataBundle:
    root = _need_dir(req.data_dir, "imagefolder", "train/ and val/ subdirectories")
    train, test, n_cls = load_imagefolder(root, req.model_shape[1])
    train, val = split_train_val(train, req.val_samples, req.max_train, req.seed)
    return DataBundle("imagefolder", train, _subset(test, req.max_test, req.seed), 3, None,
                      n_cls, str(root), val)


def _synthetic(req: DataRequest) -> DataBundle:
    shape, n, n_train = req.model_shape, req.model_classes, req.max_train or 512
    train, test = synthetic_data(shape, n, n_train + req.val_samples, req.max_test or 128,
                                 req.seed)
    train, val = split_train_val(train, req.val_samples, n_train, req.seed)
    return DataBundle("synthetic", train, test, shape[0], shape[1], n, "synthetic", val)


#: the dataset registry: ``TrainConfig.dataset`` → loader (the module docstring's table)
DATASETS: dict[str, Callable[[DataRequest], DataBundle]] = {
    "fashion_mnist": _fashion_mnist,
    "mnist_idx": _mnist_idx,
    "cifar10": _cifar10,
    "imagefolder": _imagefolder,
    "synthetic": _synthetic,
}


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_data(dataset: str, data_dir: str | None, model_shape: tuple[int, int, int],
              model_classes: int, *, max_train: int | None = None, max_test: int | None = None,
              seed: int = 0, val_samples: int = 0) -> DataBundle:
    """Load ``dataset`` (see the module docstring); ``model_shape``/``model_classes`` are used
    only where the data takes its shape from the model (synthetic, imagefolder's size)."""
    if dataset not in DATASETS:
        raise UnknownNameError("dataset", dataset, DATASETS)
    return DATASETS[dataset](DataRequest(data_dir, tuple(model_shape), model_classes,
                                         max_train, max_test, seed, val_samples))
