# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/train/config.py and cli.py: option resolution and validation errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bnn_brevitas.errors import ConfigError
from bnn_brevitas.train import TrainConfig, validate
from bnn_brevitas.train import cli
from bnn_brevitas.train import data as train_data
from bnn_brevitas.train.config import merge

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_caplog(monkeypatch):
    """The CLI's rich logging setup would replace pytest's capture handler."""
    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)


def resolved(argv: list[str]) -> TrainConfig:
    return cli.resolve_config(cli.build_parser().parse_args(argv))


def test_defaults_match_the_default_config_file():
    from_file = resolved(["--config", str(REPO / "configs/train/default.yaml")])
    assert from_file == TrainConfig()
    assert from_file.model == "bnext_nano_hw" and from_file.dataset == "fashion_mnist"


@pytest.mark.parametrize("path", sorted((REPO / "configs/train").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_validates(path, tmp_path):
    cfg = resolved(["--config", str(path), "--device", "cpu", "--data-dir", str(tmp_path)])
    assert cfg.epochs >= 1 and cfg.device == "cpu"


def test_flags_override_the_yaml_file_which_overrides_defaults(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"epochs": 5, "lr": 1, "model_overrides": {"se_ratio": 4}}))
    cfg = resolved(["--config", str(cfg_file), "--epochs", "3", "--set", "trunk_bits=6",
                    "--no-export", "--teacher", "none"])
    assert cfg.epochs == 3 and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.model_overrides == {"se_ratio": 4, "trunk_bits": 6}
    assert cfg.export is False and cfg.teacher is None
    assert resolved(["--export"]).export is True


def test_booleans_are_boolean_optional_flags_not_type_bool():
    actions = {a.dest: a for a in cli.build_parser()._actions}
    for name in ("quantize", "progressive", "amp", "export"):
        assert "--no-" + name in actions[name].option_strings
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--export", "False"])


def test_dry_run_prints_the_resolved_config(capsys):
    assert cli.main(["--dry-run", "--dataset", "synthetic", "--epochs", "4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["epochs"] == 4 and printed["dataset"] == "synthetic"
    assert set(printed) == set(TrainConfig().to_dict())


@pytest.mark.parametrize("values,message", [
    ({"lr": -1.0}, r"^lr: must be in \(0, 1\], got -1.0$"),
    ({"epochs": 0}, r"^epochs: must be ≥ 1"),
    ({"warmup_epochs": 2.0, "epochs": 2}, r"^warmup_epochs: must be in \[0, epochs\)"),
    ({"kd_alpha": 1.5}, r"^kd_alpha: must be in \[0, 1\]"),
    ({"binarize_at": 0.0}, r"^binarize_at: must be in \(0, 1\]"),
    ({"batch_size": 1}, r"^batch_size: must be ≥ 2"),
    ({"dataset": "imagenet"}, r"^dataset: invalid value 'imagenet'; valid: fashion_mnist, "
                              r"mnist_idx, cifar10, imagefolder, synthetic$"),
    ({"augment": "heavy"}, r"^augment: invalid value 'heavy'; valid: auto, none"),
    ({"device": "tpu"}, r"^device: invalid value 'tpu'; valid: auto, cpu, cuda$"),
    ({"model": "resnet50"}, r"^model: unknown model 'resnet50'; valid: bnext_18, "),
    ({"model_overrides": {"widht": 3}}, r"unknown override\(s\) \['widht'\] for model "
                                        r"'bnext_nano_hw'; valid: widths, layout"),
    ({"amp": True, "device": "cpu"}, r"^amp: mixed precision needs a CUDA device"),
    ({"quantize": False, "model": "cnv_w1a1"}, r"^quantize: --no-quantize needs a BNext model"),
    ({"data_dir": "/nonexistent/dir"}, r"^data_dir: '/nonexistent/dir' does not exist$"),
])
def test_invalid_values_name_the_field_and_the_valid_options(values, message):
    with pytest.raises(ConfigError, match=message):
        validate(merge(TrainConfig(), values, "test"))


@pytest.mark.parametrize("values,message", [
    ({"lerning_rate": 1e-3}, r"^test: unknown option\(s\) lerning_rate; valid: model, "),
    ({"epochs": "two"}, r"^epochs: expected an integer, got 'two'$"),
    ({"epochs": 2.5}, r"^epochs: expected an integer, got 2.5$"),
    ({"export": "yes"}, r"^export: expected true or false, got 'yes'$"),
    ({"model": None}, r"^model: a value is required$"),
])
def test_unknown_keys_and_wrong_types_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        merge(TrainConfig(), values, "test")


def test_bad_yaml_file_is_a_clear_error(tmp_path, caplog):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    assert cli.main(["--config", str(bad), "--dry-run"]) == 2
    assert "must hold a mapping of option: value" in caplog.text
    assert cli.main(["--config", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    assert "does not exist" in caplog.text


def test_cli_choice_errors_exit_2():
    with pytest.raises(SystemExit) as e:
        cli.main(["--dataset", "imagenet"])
    assert e.value.code == 2


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(train_data, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert cli.main(["--epochs", "1", "-o", str(tmp_path / "run")]) == 2
    assert ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
            "or pass --data-dir DIR with the four IDX files") in caplog.text
    assert not (tmp_path / "run").exists()  # failed before anything was written


def test_bad_value_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "bnn_brevitas.train", "--lr", "-1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "lr: must be in (0, 1]" in proc.stderr and "Traceback" not in proc.stderr
