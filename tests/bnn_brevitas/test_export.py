# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/export.py and checkpoint.py: QONNX round trips and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import bnn_brevitas as bb
from bnn_brevitas import checkpoint, export
from tests.conftest import calibrate

CASES = ["bnext_nano", "bnext_nano_hw", "bnext_micro", "bnext_micro_hw", "cnv_w1a1",
         "cnv_w1a1:28"]


@pytest.mark.parametrize("case", CASES)
def test_export_matches_qonnx_execution(case, tmp_path):
    name, _, size = case.partition(":")
    kw = dict(in_channels=1, img_size=28) if size else {}
    model = calibrate(bb.create_model(name, **kw))
    path = tmp_path / f"{name}.onnx"
    rep = export.export_checked(model, path, samples=2)
    assert path.is_file() and rep.top1_agree and rep.max_abs_diff <= rep.tolerance
    assert rep.integer_exact is (True if model.cfg.hw else None)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["model"] == name and side["report"]["sha256"] == rep.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.onnx"]


def test_exported_hw_graph_has_binary_convs_and_minus_one_padding(tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    model = calibrate(bb.create_model("bnext_nano_hw"))
    export.export_checked(model, tmp_path / "m.onnx", samples=1)
    mw = ModelWrapper(str(tmp_path / "m.onnx"))
    pads = mw.get_nodes_by_op_type("Pad")
    assert len(pads) == 5  # one per 3×3 binary conv
    # 13 binary convs (5 blocks: 3 + 3 + 2 + 3 + 2 modules): a sign and a weight quantizer each
    bq = mw.get_nodes_by_op_type("BipolarQuant")
    weights = [n for n in bq if mw.get_initializer(n.input[0]) is not None]
    assert len(weights) == 13 and len(bq) - len(weights) == 13
    assert all(set(np.unique(np.sign(mw.get_initializer(n.input[0])))) <= {-1.0, 0.0, 1.0}
               for n in weights)
    for p in pads:
        assert float(mw.get_initializer(p.input[2])) == -1.0


def test_mismatch_fails_and_leaves_nothing(tmp_path, monkeypatch):
    model = calibrate(bb.create_model("cnv_w1a1", in_channels=1, img_size=28))
    real = export.qonnx_integer_probe

    def corrupt(path, x):
        y, codes = real(path, x)
        return y + 1.0, codes

    monkeypatch.setattr(export, "qonnx_integer_probe", corrupt)
    with pytest.raises(export.ExportMismatchError, match="does not match Brevitas"):
        export.export_checked(model, tmp_path / "bad.onnx", samples=1)
    assert list(tmp_path.iterdir()) == []


def test_export_path_must_be_onnx(tmp_path):
    with pytest.raises(bb.UserError, match="must end in .onnx"):
        export.export_checked(bb.create_model("bnext_nano"), tmp_path / "m.pt")


def test_checkpoint_round_trip_and_cli_export(tmp_path, capsys):
    model = calibrate(bb.create_model("bnext_nano_hw", widths=(8, 16, 32, 32)))
    ck = tmp_path / "ck.pt"
    checkpoint.save_checkpoint(ck, model, epoch=3)
    again = checkpoint.load_model(ck)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.cfg.widths == (8, 16, 32, 32)
    assert export.main(["--checkpoint", str(ck), "-o", str(tmp_path / "ck.onnx"),
                        "--samples", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["integer_exact"] is True and out["model"] == "bnext_nano_hw"


@pytest.mark.parametrize("content,msg", [
    (b"not a checkpoint", "cannot read checkpoint"),
    (None, "does not exist"),
])
def test_unreadable_checkpoint_is_a_clear_error(tmp_path, content, msg):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(bb.UserError, match=msg):
        checkpoint.load_model(path)
    assert export.main(["--checkpoint", str(path)]) == 2


def test_checkpoint_of_wrong_shape_is_a_clear_error(tmp_path):
    model = bb.create_model("bnext_nano")
    ck = tmp_path / "ck.pt"
    checkpoint.save_checkpoint(ck, model)
    data = torch.load(ck, weights_only=True)
    data["config"]["widths"] = [8, 16, 32, 32]
    torch.save(data, ck)
    with pytest.raises(bb.UserError, match="does not match model 'bnext_nano'"):
        checkpoint.load_model(ck)


def test_sample_inputs_are_on_the_pixel_grid():
    x = export.sample_inputs((1, 4, 4), 3, seed=1).numpy() * 255
    assert np.array_equal(x, np.round(x)) and x.min() >= 0 and x.max() <= 255
