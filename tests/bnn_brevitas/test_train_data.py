# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/train/data.py, loaders.py, augment.py on generated fixtures."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_brevitas.errors import UnknownNameError, UserError
from bnn_brevitas.train import augment as aug
from bnn_brevitas.train import data, loaders
from tests.conftest import FMNIST_DIR


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def make_idx_dir(root: Path, n_train: int = 12, n_test: int = 6, suffix: str = ".gz",
                 sep: str = "-") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {"train-images": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels": np.arange(n_train) % 10,
              "t10k-images": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels": (np.arange(n_test) * 3) % 10}
    root.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        kind = "idx3" if "images" in name else "idx1"
        write_idx(root / f"{name}{sep}{kind}-ubyte{suffix}", arr)
    return arrays


@pytest.mark.parametrize("suffix,sep", [(".gz", "-"), ("", "-"), ("", ".")])
def test_idx_loader_reads_generated_files(tmp_path, suffix, sep):
    arrays = make_idx_dir(tmp_path, suffix=suffix, sep=sep)
    train, test = data.load_idx_dir(tmp_path)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), arrays["train-images"])
    assert test.labels.tolist() == [0, 3, 6, 9, 2, 5]
    bundle = data.load_data("mnist_idx", str(tmp_path), (1, 28, 28), 10)
    assert (bundle.in_channels, bundle.img_size, bundle.num_classes) == (1, 28, 10)


def test_idx_loader_rejects_bad_files(tmp_path):
    make_idx_dir(tmp_path)
    good = tmp_path / "t10k-labels-idx1-ubyte.gz"
    good.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + bytes(3)))
    with pytest.raises(UserError, match="is truncated: header says \\(9,\\)"):
        data.load_idx_dir(tmp_path)
    good.write_bytes(gzip.compress(b"\x12\x34\x56\x78"))
    with pytest.raises(UserError, match="bad magic number"):
        data.load_idx_dir(tmp_path)
    good.unlink()
    with pytest.raises(UserError, match="no t10k-labels IDX file"):
        data.load_idx_dir(tmp_path)


def write_cifar(root: Path, per_batch: int = 4) -> list[np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        rows.append(x)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": [i % 10 for i in range(per_batch)],
                         b"batch_label": name.encode()}, f)
    return rows


def test_cifar_pickle_loader_on_a_generated_fixture(tmp_path):
    rows = write_cifar(tmp_path / "cifar-10-batches-py")
    train, test = data.load_cifar10(tmp_path)  # the parent directory works too
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert np.array_equal(train.images[5].numpy(), rows[1][1].reshape(3, 32, 32))
    assert train.labels.tolist()[:5] == [0, 1, 2, 3, 0]
    bundle = data.load_data("cifar10", str(tmp_path), (3, 32, 32), 10)
    assert (bundle.in_channels, bundle.img_size) == (3, 32)


def test_cifar_loader_refuses_code_in_pickles(tmp_path):
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match="refusing to unpickle builtins.print"):
        data.load_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3 missing"):
        data.load_cifar10(tmp_path)


def make_tree(root: Path) -> None:
    from PIL import Image

    colours = {"cat": (200, 10, 10), "dog": (10, 200, 10), "eel": (10, 10, 200)}
    for split, n in (("train", 3), ("val", 2)):
        for cls, rgb in colours.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40 + 7 * i, 30), rgb).save(root / split / cls / f"{i}.png")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")


def test_imagefolder_loader_on_a_generated_tree(tmp_path):
    make_tree(tmp_path)
    bundle = data.load_data("imagefolder", str(tmp_path), (3, 16, 16), 1000)
    assert (len(bundle.train), len(bundle.test), bundle.num_classes) == (9, 6, 3)
    assert bundle.img_size is None and bundle.in_channels == 3
    x, y = bundle.train[4]
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8 and int(y) == 1  # dog
    assert x[1].float().mean() == pytest.approx(200, abs=1) and x[0].float().mean() < 20
    assert bundle.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    (tmp_path / "val" / "fox").mkdir()
    with pytest.raises(UserError, match=r"classes \['fox'\] of .* are not in train/"):
        data.load_imagefolder(tmp_path, 16)


def test_synthetic_data_is_seeded_balanced_and_in_the_model_shape():
    a = data.load_data("synthetic", None, (3, 8, 8), 4, max_train=40, max_test=8, seed=3)
    b = data.load_data("synthetic", None, (3, 8, 8), 4, max_train=40, max_test=8, seed=3)
    assert torch.equal(a.train.images, b.train.images) and a.train.images.shape == (40, 3, 8, 8)
    assert torch.bincount(a.train.labels).tolist() == [10, 10, 10, 10]
    assert (a.in_channels, a.img_size, a.num_classes) == (3, 8, 4)


def test_max_samples_takes_a_seeded_subset(tmp_path):
    make_idx_dir(tmp_path, n_train=30)
    b = data.load_data("mnist_idx", str(tmp_path), (1, 28, 28), 10, max_train=7, max_test=2)
    assert (len(b.train), len(b.test)) == (7, 2)
    again = data.load_data("mnist_idx", str(tmp_path), (1, 28, 28), 10, max_train=7)
    assert torch.equal(b.train.images, again.train.images)


@pytest.mark.dataset
def test_fashion_mnist_from_debian():
    b = data.load_data("fashion_mnist", str(FMNIST_DIR), (1, 28, 28), 10)
    assert (len(b.train), len(b.test), b.num_classes) == (60000, 10000, 10)
    assert torch.bincount(b.test.labels).tolist() == [1000] * 10


def test_resumable_sampler_skips_exactly_the_consumed_prefix():
    ds = torch.utils.data.TensorDataset(torch.arange(50))
    dl = loaders.train_loader(ds, 8, 1, 0, seed=5, workers=0)
    loaders.start_epoch(dl, 2)
    full = [b[0].tolist() for b in dl]
    loaders.start_epoch(dl, 2, skip_batches=3)
    assert [b[0].tolist() for b in dl] == full[3:]
    assert len(full) == loaders.steps_per_epoch(50, 8, 1) == 6
    loaders.start_epoch(dl, 3)
    assert [b[0].tolist() for b in dl] != full


def test_ddp_shards_are_disjoint_and_eval_shards_cover_the_test_set():
    ds = torch.utils.data.TensorDataset(torch.arange(21))
    seen = []
    for rank in (0, 1):
        dl = loaders.train_loader(ds, 8, 2, rank, seed=0, workers=0)
        loaders.start_epoch(dl, 0)
        seen.append({i for b in dl for i in b[0].tolist()})
        assert len(dl) == loaders.steps_per_epoch(21, 8, 2) == 2
    assert not seen[0] & seen[1]
    shards = [list(loaders.ShardSampler(21, 2, r)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(21))


@pytest.mark.parametrize("kind,shape", [("crop", (1, 28, 28)), ("light", (1, 28, 28)),
                                        ("randaugment", (3, 32, 32)),
                                        ("randaugment", (3, 64, 64))])
def test_augmentations_keep_shape_and_range(kind, shape):
    x = torch.rand(6, *shape)
    y = aug.build_augment(kind, shape[-1])(x)
    assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert not torch.equal(x, y)


def test_auto_augmentation_per_dataset():
    assert aug.resolve_augment("auto", "fashion_mnist") == "light"
    assert aug.resolve_augment("auto", "mnist_idx") == "crop"  # no flips for digits
    assert aug.resolve_augment("auto", "cifar10") == "randaugment"
    assert aug.resolve_augment("none", "cifar10") == "none"
    assert aug.build_augment("none", 28) is None


def test_dataset_registry_lists_its_names_on_an_unknown_one():
    assert data.list_datasets() == ["fashion_mnist", "mnist_idx", "cifar10", "imagefolder",
                                    "synthetic"]
    with pytest.raises(UnknownNameError, match="unknown dataset 'imagenet'; valid: cifar10, "
                                               "fashion_mnist, imagefolder, mnist_idx, synthetic"):
        data.load_data("imagenet", None, (1, 28, 28), 10)
