# SPDX-License-Identifier: BSD-3-Clause
"""The train CLI's bad-input table: argv → exit code and the message that explains it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnn_brevitas.train import cli
from tests.bnn_brevitas.test_train_data import make_idx_dir
from tests.bnn_brevitas.test_train_resume import RUN

#: (argv, exit code, message fragment); {tmp} is a fresh directory, {idx} 12 IDX images
CASES = [
    (["--lr", "0"], 2, "lr: must be in (0, 1], got 0.0"),
    (["--lr", "5"], 2, "lr: must be in (0, 1], got 5.0"),
    (["--lr=nan"], 2, "lr: must be a finite number, got nan"),
    (["--lr=inf"], 2, "lr: must be a finite number, got inf"),
    (["--min-lr=-inf"], 2, "min_lr: must be a finite number, got -inf"),
    (["--weight-decay", "2"], 2, "weight_decay: must be in [0, 1], got 2.0"),
    (["--warmup-lr", "0.01"], 2, "warmup_lr: must be in [0, lr], got 0.01"),
    (["--warmup-epochs", "2"], 2, "warmup_epochs: must be in [0, epochs), got 2.0"),
    (["--grad-clip", "-1"], 2, "grad_clip: must be ≥ 0 (0 disables clipping), got -1.0"),
    (["--kd-temperature", "0"], 2, "kd_temperature: must be in (0, 100], got 0.0"),
    (["--epochs", "0"], 2, "epochs: must be ≥ 1, got 0"),
    (["--batch-size", "1"], 2, "batch_size: must be ≥ 2 (BatchNorm needs 2 samples), got 1"),
    (["--val-samples", "-1"], 2, "val_samples: must be ≥ 0, got -1"),
    (["--seed", "-1"], 2, "seed: must be in [0, 9223372036854775807], got -1"),
    (["--threads", "0"], 2, "threads: must be ≥ 1, got 0"),
    (["--epochs", "two"], 2, "argument --epochs: invalid int value: 'two'"),
    (["--model", "resnet50"], 2, "model: unknown model 'resnet50'; valid: "),
    (["--set", "widths"], 2, "override 'widths' must look like FIELD=VALUE"),
    (["--set", "widht=3"], 2, "unknown override(s) ['widht'] for model 'bnext_nano_hw'"),
    (["--config", "{tmp}/missing.yaml"], 2, "does not exist"),
    (["--extend-epochs", "2"], 2, "extend_epochs: extends a run, so it needs --resume RUN_DIR"),
    (["--resume", "{tmp}/absent"], 2, "resume: '{tmp}/absent' does not exist"),
    (["--resume", "{tmp}"], 2, "holds no checkpoint.pt: not a training run directory"),
    (["--resume", "{tmp}/file.pt"], 2, "is a file; --resume takes the run directory"),
    (["--dataset", "mnist_idx"], 2, "mnist_idx needs --data-dir DIR"),
    (["--dataset", "mnist_idx", "--data-dir", "{idx}", "--val-samples", "12"], 2,
     "val_samples: 12 validation images leave none of the 12 training images"),
    (["--dataset", "mnist_idx", "--data-dir", "{idx}", "--val-samples", "4", "--batch-size",
      "16"], 2, "batch_size: 16 exceeds the 8 training samples"),
]


@pytest.fixture(autouse=True)
def _keep_caplog(monkeypatch):
    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)


@pytest.mark.parametrize("argv,code,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_exits_with_its_code_and_says_why(argv, code, message, tmp_path, capsys,
                                                    caplog):
    (tmp_path / "file.pt").write_bytes(b"not a checkpoint")
    make_idx_dir(tmp_path / "idx", n_train=12)
    fill = {"{tmp}": str(tmp_path), "{idx}": str(tmp_path / "idx")}

    def sub(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    run = Path(tmp_path / "run")
    try:
        got = cli.main([*RUN, *map(sub, argv), "-o", str(run)])
    except SystemExit as e:  # argparse's own errors
        got = e.code
    assert got == code
    assert sub(message) in caplog.text + capsys.readouterr().err
    assert not run.exists()  # a refused run writes nothing
