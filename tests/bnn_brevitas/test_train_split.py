# SPDX-License-Identifier: BSD-3-Clause
"""The validation split (train/data.py) and model selection on it (train/selection.py)."""

from __future__ import annotations

import pytest
import torch

from bnn_brevitas.errors import UserError
from bnn_brevitas.train import TrainConfig, data
from bnn_brevitas.train.selection import improves
from tests.bnn_brevitas.test_train_data import make_idx_dir
from tests.conftest import FMNIST_DIR


def indexed(n: int) -> data.ArrayDataset:
    """A dataset whose label is the sample's index, so a subset tells which samples it took."""
    return data.ArrayDataset(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))


def ids(ds: data.ArrayDataset | None) -> list[int]:
    return [] if ds is None else ds.labels.tolist()


@pytest.mark.parametrize("n_val,n_train", [(10, None), (10, 30), (25, 100), (1, 1)])
def test_split_is_disjoint_sorted_and_sized(n_val, n_train):
    train, val = data.split_train_val(indexed(100), n_val, n_train, seed=3)
    assert len(ids(val)) == n_val and len(ids(train)) == min(n_train or 100, 100 - n_val)
    assert not set(ids(train)) & set(ids(val))
    assert ids(train) == sorted(ids(train)) and ids(val) == sorted(ids(val))


def test_split_is_reproducible_from_the_seed_and_changes_with_it():
    a = data.split_train_val(indexed(100), 20, None, seed=0)
    b = data.split_train_val(indexed(100), 20, None, seed=0)
    c = data.split_train_val(indexed(100), 20, None, seed=1)
    assert ids(a[1]) == ids(b[1]) and ids(a[0]) == ids(b[0])
    assert ids(a[1]) != ids(c[1])


def test_zero_disables_the_split_and_keeps_the_old_training_subset():
    train, val = data.split_train_val(indexed(100), 0, 30, seed=5)
    assert val is None
    g = torch.Generator().manual_seed(5)
    assert ids(train) == torch.randperm(100, generator=g)[:30].sort().values.tolist()
    assert ids(data.split_train_val(indexed(100), 0, None, seed=5)[0]) == list(range(100))


def test_a_split_that_leaves_no_training_images_is_a_user_error():
    with pytest.raises(UserError, match=r"val_samples: 100 validation images leave none of the "
                                        r"100 training images.*--val-samples"):
        data.split_train_val(indexed(100), 100, None, seed=0)


def test_datasets_carry_their_validation_split(tmp_path):
    make_idx_dir(tmp_path, n_train=40)
    bundle = data.load_data("mnist_idx", str(tmp_path), (1, 28, 28), 10, val_samples=8,
                            max_train=20)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (20, 8, 6)
    syn = data.load_data("synthetic", None, (1, 8, 8), 4, max_train=32, val_samples=16)
    assert (len(syn.train), len(syn.val)) == (32, 16)  # synthetic generates the extra images
    assert data.load_data("synthetic", None, (1, 8, 8), 4, max_train=32).val is None


@pytest.mark.dataset
def test_fashion_mnist_holds_out_5000_of_its_60000_training_images():
    assert TrainConfig().val_samples == 5000
    bundle = data.load_data("fashion_mnist", str(FMNIST_DIR), (1, 28, 28), 10,
                            val_samples=TrainConfig().val_samples)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (55000, 5000, 10000)
    counts = torch.bincount(bundle.val.labels, minlength=10)
    assert counts.min() > 400  # a random split covers every class


@pytest.mark.parametrize("best,record,selected", [
    (None, {"val_acc": 0.1, "val_loss": 3.0}, True),
    ({"val_acc": 0.5, "val_loss": 1.0}, {"val_acc": 0.6, "val_loss": 2.0}, True),
    ({"val_acc": 0.5, "val_loss": 1.0}, {"val_acc": 0.4, "val_loss": 0.1}, False),
    ({"val_acc": 0.5, "val_loss": 1.0}, {"val_acc": 0.5, "val_loss": 0.9}, True),  # tie: loss
    ({"val_acc": 0.5, "val_loss": 1.0}, {"val_acc": 0.5, "val_loss": 1.0}, False),  # earlier
    ({"val_acc": None, "val_loss": None}, {"val_acc": None, "val_loss": None}, True),  # no split
])
def test_selection_prefers_validation_top1_then_loss_then_the_earlier_epoch(best, record,
                                                                            selected):
    assert improves(best, record) is selected


def test_without_a_split_the_final_epoch_is_selected_and_tested_once(tmp_path, monkeypatch):
    import json

    from bnn_brevitas.train import cli
    from tests.bnn_brevitas.test_train_resume import RUN

    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)
    run = tmp_path / "run"
    assert cli.main([*RUN, "--val-samples", "0", "--epochs", "1", "-o", str(run)]) == 0
    r = json.loads((run / "model_card.json").read_text())["results"]
    assert r["selected_by"] == "final epoch (no validation split)" and r["selected_epoch"] == 1
    assert r["val_top1"] is None and 0.0 <= r["test_top1"] <= 1.0
    assert "by final epoch" in (run / "model_card.md").read_text()
