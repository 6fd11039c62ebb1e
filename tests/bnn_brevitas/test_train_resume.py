# SPDX-License-Identifier: BSD-3-Clause
"""--resume is exact or refuses (train/resume.py); --extend-epochs; exact mid-epoch resume."""

from __future__ import annotations

import dataclasses
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch
import yaml

from bnn_brevitas.errors import ConfigError, UserError
from bnn_brevitas.train import cli, loop, runner
from bnn_brevitas.train.config import FIELDS
from bnn_brevitas.train.recipe import WarmupCosine
from bnn_brevitas.train.resume import RESUME_SAFE
from tests.bnn_brevitas.test_train_run import assert_same_training, load

RUN = ["--dataset", "synthetic", "--set", "widths=[8,16,32,32]", "--max-train-samples", "128",
       "--max-test-samples", "32", "--val-samples", "32", "--batch-size", "16", "--threads", "1",
       "--no-export"]


@pytest.fixture(autouse=True)
def _keep_caplog(monkeypatch):
    """The CLI's rich logging setup would replace pytest's capture handler."""
    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)


def train_run(path: Path, *extra: str) -> Path:
    assert cli.main([*RUN, *extra, "-o", str(path)]) == 0
    return path


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """A finished 1-epoch run; tests that resume it for real work on a copy."""
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "setup_logging", lambda verbose=False: None)
    try:
        return train_run(tmp_path_factory.mktemp("resume") / "run", "--epochs", "1")
    finally:
        mp.undo()


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def unsafe_change(name: str, run: Path, tmp_path: Path) -> list[str]:
    """CLI arguments that change field ``name`` from ``one_epoch``'s value."""
    yaml_only = {"restart_at": {"restart_at": [1]}}
    if name in yaml_only:
        path = tmp_path / "change.yaml"
        path.write_text(yaml.safe_dump(yaml_only[name]))
        return ["--config", str(path)]
    return {
        "model": ["--model", "bnext_micro_hw"], "model_overrides": ["--set", "widths=[8,16,32,64]"],
        "quantize": ["--no-quantize"], "dataset": ["--dataset", "mnist_idx"],
        "data_dir": ["--data-dir", str(tmp_path)], "max_train_samples": ["--max-train-samples", "64"],
        "max_test_samples": ["--max-test-samples", "16"], "val_samples": ["--val-samples", "16"],
        "epochs": ["--epochs", "8"], "batch_size": ["--batch-size", "8"], "lr": ["--lr", "0.01"],
        "weight_decay": ["--weight-decay", "0.01"],
        "conv_weight_decay": ["--conv-weight-decay", "0.01"],
        "warmup_epochs": ["--warmup-epochs", "0.2"], "warmup_lr": ["--warmup-lr", "1e-4"],
        "min_lr": ["--min-lr", "1e-6"], "grad_clip": ["--grad-clip", "1"],
        "progressive": ["--progressive"], "binarize_at": ["--binarize-at", "0.5"],
        "teacher": ["--teacher", str(run)], "kd_temperature": ["--kd-temperature", "2"],
        "kd_alpha": ["--kd-alpha", "0.5"], "augment": ["--augment", "crop"],
        "aug_magnitude": ["--aug-magnitude", "3"], "seed": ["--seed", "1"], "amp": ["--amp"],
        "output_dir": ["-o", str(tmp_path / "elsewhere")],
    }[name]


UNSAFE = [n for n in FIELDS if n not in RESUME_SAFE]


def test_every_field_is_classified_and_the_safe_ones_are_few():
    assert all(isinstance(f.metadata.get("resume_safe"), bool) for f in FIELDS.values())
    # fast_train and fast_kernels compute bit-identical values (tests/bnn_brevitas/test_fast_train.py)
    assert set(RESUME_SAFE) == {"device", "workers", "threads", "resume", "export", "fast_train",
                                "fast_kernels"}


@pytest.mark.parametrize("name", UNSAFE)
def test_resume_refuses_each_unsafe_change_naming_it(name, one_epoch, tmp_path, caplog):
    before = snapshot(one_epoch)
    argv = ["--resume", str(one_epoch), *unsafe_change(name, one_epoch, tmp_path), "--dry-run"]
    assert cli.main(argv) == 2
    assert f"cannot change: {name} " in caplog.text and "the run's:" in caplog.text
    assert snapshot(one_epoch) == before


def test_resume_accepts_the_safe_options(one_epoch, capsys):
    argv = ["--resume", str(one_epoch), "--threads", "2", "--device", "cpu", "--workers", "0",
            "--export", "--dry-run"]
    assert cli.main(argv) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["threads"] == 2 and printed["epochs"] == 1 and printed["val_samples"] == 32


def test_the_library_refuses_too(one_epoch):
    cfg = cli.resolve_config(cli.build_parser().parse_args(["--resume", str(one_epoch)]))
    with pytest.raises(ConfigError, match=r"cannot change: lr 0.01 \(the run's: 0.002\)"):
        runner.train(dataclasses.replace(cfg, lr=0.01))


def test_a_refused_or_failed_resume_leaves_the_run_byte_identical(one_epoch, tmp_path,
                                                                   monkeypatch, caplog):
    run = copy_of(one_epoch, tmp_path)
    before = snapshot(run)
    assert cli.main(["--resume", str(run), "--model", "cnv_w1a1"]) == 2
    assert snapshot(run) == before

    def fail(*args, **kwargs):
        raise UserError("simulated failure while building the session")

    monkeypatch.setattr(runner, "_build_session", fail)
    assert cli.main(["--resume", str(run), "--threads", "2"]) == 2  # fails after validation
    assert "simulated failure" in caplog.text and snapshot(run) == before
    monkeypatch.undo()
    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)
    assert cli.main(["--resume", str(run)]) == 0  # the run still resumes


def test_a_checkpoint_file_is_refused_before_anything_is_read(one_epoch, monkeypatch, caplog):
    before = snapshot(one_epoch)
    monkeypatch.setattr(runner, "load_data", lambda *a, **k: pytest.fail("data loaded"))
    assert cli.main(["--resume", str(one_epoch / "checkpoint.pt")]) == 2
    assert "is a file; --resume takes the run directory" in caplog.text
    assert f"here: --resume {one_epoch}" in caplog.text
    assert snapshot(one_epoch) == before


def test_extend_epochs_is_a_warm_restart_equal_to_planning_it_from_the_start(one_epoch,
                                                                            tmp_path):
    run = copy_of(one_epoch, tmp_path)
    assert cli.main(["--resume", str(run), "--extend-epochs", "1"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["epochs"] == 2 and saved["restart_at"] == [1]
    planned = tmp_path / "planned.yaml"
    planned.write_text(yaml.safe_dump({"restart_at": [1]}))
    fresh = train_run(tmp_path / "fresh", "--epochs", "2", "--config", str(planned))
    extended, planned_ckpt = load(run), load(fresh)
    history = extended["extra"]["train_state"]["history"]
    assert history[0]["lr"] == pytest.approx(1e-7)  # logged after epoch 1: its schedule's end;
    history[0]["lr"] = planned_ckpt["extra"]["train_state"]["history"][0]["lr"]  # planned: 1e-5
    assert_same_training(extended, planned_ckpt)  # same weights, optimizer, metrics otherwise
    lr = WarmupCosine(16, 1, 2e-3, 1e-5, 1e-7, (8,)).lr_at  # 8 steps per epoch, 1 warm-up step
    one = WarmupCosine(8, 1, 2e-3, 1e-5, 1e-7).lr_at
    assert [lr(t) for t in range(8)] == [one(t) for t in range(8)]  # the first segment as run
    assert (lr(8), lr(9), lr(16)) == (1e-5, 2e-3, pytest.approx(1e-7))  # then a warm restart


@pytest.mark.parametrize("argv,message", [
    (["--extend-epochs", "1", "--epochs", "5"], r"cannot change: epochs 5 \(the run's: 2\)"),
    (["--extend-epochs", "0"], r"extend_epochs: must be ≥ 1, got 0"),
    (["--extend-epochs", "1", "--warmup-epochs", "0.5"], r"cannot change: warmup_epochs"),
])
def test_extend_epochs_refusals(argv, message, one_epoch, caplog):
    assert cli.main(["--resume", str(one_epoch), *argv, "--dry-run"]) == 2
    assert re.search(message, caplog.text), caplog.text


def test_a_mid_epoch_stop_then_resume_is_bit_identical(tmp_path, monkeypatch):
    reference = train_run(tmp_path / "reference", "--epochs", "2")
    real_step = loop.train_step

    def stop_after_11(s, x, y):  # epoch 2, step 3 of 8
        out = real_step(s, x, y)
        if s.global_step + 1 == 11:
            s.stop.signum = int(signal.SIGTERM)
        return out

    monkeypatch.setattr(loop, "train_step", stop_after_11)
    run = tmp_path / "stopped"
    assert cli.main([*RUN, "--epochs", "2", "-o", str(run)]) == 128 + signal.SIGTERM
    st = load(run)["extra"]["train_state"]
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (1, 3, 11)
    monkeypatch.setattr(loop, "train_step", real_step)
    assert cli.main(["--resume", str(run)]) == 0
    assert_same_training(load(run), load(reference))
    best, best_ref = (torch.load(r / "best.pt", weights_only=True) for r in (run, reference))
    assert all(torch.equal(best["state_dict"][k], best_ref["state_dict"][k])
               for k in best_ref["state_dict"])
    assert best["extra"]["test_top1"] == best_ref["extra"]["test_top1"]
