# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/train end to end on synthetic data: outputs, resume after kill, DDP, KD."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_brevitas.checkpoint import load_model
from bnn_brevitas.errors import ConfigError
from bnn_brevitas.export import compare_outputs
from bnn_brevitas.train import cli
from bnn_brevitas.train.data import DataBundle, synthetic_data
from bnn_brevitas.train.runner import fit_model_to_data
from bnn_brevitas.train.config import TrainConfig
from bnn_brevitas.utils import sha256_file

REPO = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "synthetic", "--set", "widths=[8,16,32,32]", "--max-train-samples", "256",
        "--max-test-samples", "64", "--val-samples", "32", "--batch-size", "16", "--threads", "1"]
RESUME_RUN = [*TINY, "--epochs", "3", "--no-export"]


def cli_cmd(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "bnn_brevitas.train", *map(str, args)]


def load(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


def assert_same_training(a: dict, b: dict) -> None:
    """Equal weights, buffers, optimizer position and per-epoch metrics."""
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    sa, sb = a["extra"]["train_state"], b["extra"]["train_state"]
    assert (sa["epoch"], sa["global_step"]) == (sb["epoch"], sb["global_step"])
    assert sa["scheduler"]["last_epoch"] == sb["scheduler"]["last_epoch"]
    keys = ("epoch", "global_step", "lr", "tau", "train_loss", "train_acc", "val_loss", "val_acc")
    assert [[h[k] for k in keys] for h in sa["history"]] == \
        [[h[k] for k in keys] for h in sb["history"]]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> dict:
    """An uninterrupted 3-epoch run, in a subprocess like the interrupted ones."""
    run = tmp_path_factory.mktemp("reference") / "run"
    proc = subprocess.run(cli_cmd(*RESUME_RUN, "-o", run), cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load(run)


def start_and_wait_for_first_checkpoint(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cli_cmd(*RESUME_RUN, "-o", run), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after the first epoch"
        time.sleep(0.01)
    return proc


def resume(run: Path) -> None:
    proc = subprocess.run(cli_cmd("--resume", run), cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" in proc.stderr


def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, reference_run):
    run = tmp_path / "killed"
    proc = start_and_wait_for_first_checkpoint(run)
    proc.kill()
    proc.wait()
    st = load(run)["extra"]["train_state"]
    assert 1 <= st["epoch"] < 3 and st["step_in_epoch"] == 0  # lost at most the running epoch
    resume(run)
    assert_same_training(load(run), reference_run)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_sigterm_saves_mid_epoch_and_resume_equals_the_uninterrupted_run(tmp_path,
                                                                         reference_run):
    run = tmp_path / "terminated"
    proc = start_and_wait_for_first_checkpoint(run)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM
    assert "--resume" in proc.stderr.read()
    st = load(run)["extra"]["train_state"]
    assert st["epoch"] * 16 + st["step_in_epoch"] == st["global_step"] < 48
    assert st["scheduler"]["last_epoch"] == st["global_step"]
    resume(run)
    assert_same_training(load(run), reference_run)


def test_one_epoch_end_to_end_exports_and_writes_the_model_card(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main([*TINY, "--epochs", "1", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test top-1" in out and "model_card.md" in out
    assert {p.name for p in run.iterdir()} >= {
        "checkpoint.pt", "best.pt", "config.yaml", "metrics.jsonl", "curves.png", "model_card.json",
        "model_card.md", "bnext_nano_hw.onnx", "bnext_nano_hw.json"}
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (record,) = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert record["epoch"] == 1 and record["global_step"] == 16 and record["tau"] == 0.0
    assert record["lr"] == pytest.approx(1e-7) and 0.0 <= record["val_acc"] <= 1.0
    assert "test_acc" not in record  # the test split is evaluated once, at the end
    card = json.loads((run / "model_card.json").read_text())
    assert card["results"]["val_top1"] == record["val_acc"]
    assert card["results"]["selected_epoch"] == 1 and 0.0 <= card["results"]["test_top1"] <= 1
    assert card["checkpoint"]["sha256"] == sha256_file(run / "best.pt")
    assert card["onnx"]["sha256"] == sha256_file(run / "bnext_nano_hw.onnx")
    assert card["onnx"]["integer_exact"] is True
    binary = [g for g in card["precision"]["layers"] if g["weight_bits"] == 1]
    assert binary == [{"kind": "QuantConv2d", "weight_bits": 1, "input_bits": 1, "layers": 8,
                       "params": binary[0]["params"], "macs": binary[0]["macs"]}]
    assert card["costs"]["bops"] == binary[0]["macs"]
    assert card["dataset"]["train_samples"] == 256 and card["training"]["epochs"] == 1
    assert card["dataset"]["val_samples"] == 32
    assert "## Bit widths per layer kind" in (run / "model_card.md").read_text()
    model = load_model(run / "checkpoint.pt")  # the training checkpoint is a model checkpoint
    assert model.cfg.widths == (8, 16, 32, 32)
    assert cli.main([*TINY, "--epochs", "1", "-o", str(run)]) == 2  # never overwrite a run


def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "bnn_brevitas.train", *TINY, "--epochs", "1", "--no-export", "-o",
           str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[rank 1] training done" in proc.stderr
    assert proc.stderr.count("training done") == 2
    ckpt = load(run)
    st = ckpt["extra"]["train_state"]
    assert st["world_size"] == 2 and len(st["rng"]) == 2
    assert st["global_step"] == 16  # 256 samples / 2 ranks / (16 / 2) per rank
    assert not torch.equal(st["rng"][0]["torch"], st["rng"][1]["torch"])
    assert [p.name for p in run.glob("checkpoint*")] == ["checkpoint.pt"]


def test_float_teacher_then_distilled_student(tmp_path):
    teacher = tmp_path / "teacher"
    assert cli.main(["--dataset", "synthetic", "--model", "bnext_nano", "--no-quantize",
                     "--set", "widths=[8,16,32,32]", "--max-train-samples", "512",
                     "--max-test-samples", "128", "--val-samples", "64", "--batch-size", "32",
                     "--epochs", "3",
                     "--lr", "5e-3", "--threads", "1", "-o", str(teacher)]) == 0
    card = json.loads((teacher / "model_card.json").read_text())
    assert card["quantize"] is False and card["onnx"] is None  # a float model is not exported
    assert card["results"]["test_top1"] > 0.3  # it learned (chance: 0.1)
    student = tmp_path / "student"
    assert cli.main([*TINY, "--epochs", "1", "--no-export", "--teacher", str(teacher),
                     "--kd-alpha", "0.5", "--kd-temperature", "2", "-o", str(student)]) == 0
    cfg = load(student)["extra"]["train_config"]
    assert cfg["teacher"] == str(teacher) and cfg["kd_alpha"] == 0.5
    assert cli.main([*TINY, "--set", "num_classes=5", "--epochs", "1", "--teacher",
                     str(teacher), "-o", str(tmp_path / "bad")]) == 2


@pytest.mark.parametrize("dataset", ["cifar10", "imagefolder"])
def test_rgb_datasets_train_through_the_cli_with_randaugment(dataset, tmp_path):
    from tests.bnn_brevitas.test_train_data import make_tree, write_cifar

    data_dir = tmp_path / "data"
    write_cifar(data_dir, per_batch=10) if dataset == "cifar10" else make_tree(data_dir)
    run = tmp_path / "run"
    assert cli.main(["--dataset", dataset, "--data-dir", str(data_dir), "--model",
                     "bnext_micro_hw", "--set", "widths=[8,16,32,32]", "--batch-size", "4",
                     "--val-samples", "2", "--augment", "auto",
                     "--epochs", "1", "--no-export", "--threads", "1", "-o", str(run)]) == 0
    card = json.loads((run / "model_card.json").read_text())
    assert card["dataset"]["input_shape"] == [3, 32, 32]
    assert card["dataset"]["num_classes"] == (10 if dataset == "cifar10" else 3)
    assert card["training"]["augment"] == "auto" and card["augmentation"] == "randaugment"


def _bundle(c: int, size: int | None, classes: int) -> DataBundle:
    train, test = synthetic_data((1, 8, 8), 2, 4, 2)
    return DataBundle("x", train, test, c, size, classes, "")


@pytest.mark.parametrize("model,data,overrides", [
    ("bnext_nano_hw", (1, 28, 10), {}),
    ("cnv_w1a1", (1, 28, 10), {"in_channels": 1, "img_size": 28}),
    ("bnext_micro_hw", (1, 28, 10), {"in_channels": 1, "img_size": 28}),
    ("bnext_t", (3, 32, 10), {"img_size": 32, "num_classes": 10}),
    ("cnv_w1a1", (3, None, 3), {"num_classes": 3}),  # imagefolder: the model's size
])
def test_model_input_follows_the_dataset(model, data, overrides):
    assert fit_model_to_data(TrainConfig(model=model), _bundle(*data)) == overrides


def test_model_input_that_contradicts_the_dataset_is_an_error():
    with pytest.raises(ConfigError, match="img_size=32 does not match dataset x"):
        fit_model_to_data(TrainConfig(model_overrides={"img_size": 32}), _bundle(1, 28, 10))
    with pytest.raises(ConfigError, match="cnv_w1a1 cannot take x input.*img_size 28, 30 or 32"):
        fit_model_to_data(TrainConfig(model="cnv_w1a1"), _bundle(3, 224, 10))


def test_export_check_accepts_exactly_tied_logits_only():
    ref = np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.3]])
    out = ref + np.array([[-1e-8, 1e-8, 0.0], [0.0, 0.0, 0.0]])  # tie resolved the other way
    assert compare_outputs(ref, out, None, None, 1e-5, 1e-5)[3] is True
    swapped = ref[:, [1, 0, 2]].copy()
    swapped[1] = [0.9, 0.2, 0.3]
    assert compare_outputs(ref, swapped, None, None, 1e-5, 1e-5)[3] is False
