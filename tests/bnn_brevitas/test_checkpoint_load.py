# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/checkpoint.py: a bad stored config or a contradicting override is a UserError."""

from __future__ import annotations

import json

import pytest
import torch

from bnn_brevitas.checkpoint import load_model, publish, read_checkpoint, save_checkpoint
from bnn_brevitas.errors import UserError
from bnn_brevitas.models import create_model
from tests.conftest import calibrate

WIDTHS = [8, 16, 32, 32]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    model = calibrate(create_model("bnext_nano_hw", widths=WIDTHS))
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    save_checkpoint(path, model)
    return path


def rewritten(good, tmp_path, **changes) -> str:
    ckpt = torch.load(good, weights_only=True)
    for key, value in changes.items():
        if key.startswith("config."):
            ckpt["config"][key.split(".", 1)[1]] = value
        else:
            ckpt[key] = value
    path = tmp_path / "bad.pt"
    torch.save(ckpt, path)
    return str(path)


@pytest.mark.parametrize("changes,message", [
    ({"config.widths": "abc"}, r"has an invalid model config"),
    ({"config.widths": None}, r"has an invalid model config"),
    ({"config.in_channels": "x"}, r"has an invalid model config: .*in_channels"),
    ({"config.trunk_bits": 1.5}, r"has an invalid model config: .*trunk_bits"),
    ({"config.zzz": 1}, r"unknown bnext_nano_hw config field\(s\) \['zzz'\]"),
    ({"config": [1, 2]}, r"is malformed: 'config' is a list, not a dict"),
    ({"state_dict": [1]}, r"is malformed: 'state_dict' is a list, not a dict"),
    ({"model": 3}, r"is malformed: 'model' is a int, not a str"),
    ({"model": "resnet50"}, r"unknown model 'resnet50'"),
])
def test_a_bad_stored_config_is_a_user_error_naming_the_file(good, tmp_path, changes, message):
    path = rewritten(good, tmp_path, **changes)
    with pytest.raises(UserError, match=message) as e:
        load_model(path)
    assert path in str(e.value)


def test_overrides_may_repeat_the_stored_config_but_not_contradict_it(good):
    assert load_model(good, {"widths": WIDTHS}).cfg.widths == tuple(WIDTHS)
    with pytest.raises(UserError, match=r"override widths=\[8, 8, 8, 8\] contradicts the "
                                        r"checkpoint's widths=\[8, 16, 32, 32\]"):
        load_model(good, {"widths": [8, 8, 8, 8]})
    with pytest.raises(UserError, match=r"unknown bnext_nano_hw config field\(s\) \['widht'\]"):
        load_model(good, {"widht": 3})


def test_publish_takes_the_checkpoint_the_model_card_names(good, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(good.read_bytes())
    (run / "model_card.json").write_text(json.dumps({"checkpoint": {"path": "best.pt"},
                                                     "results": {"test_top1": 0.5}}))
    publish(run, tmp_path / "pub.pt")
    extra = read_checkpoint(tmp_path / "pub.pt")["extra"]
    assert extra["source"] == str(run / "best.pt") and extra["results"]["test_top1"] == 0.5
