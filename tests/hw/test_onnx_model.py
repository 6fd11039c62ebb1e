# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/sim/models.py OnnxModel: a one-node FINN HW graph (MVAU) behind the emulator."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from hw.driver.meta import load_meta
from hw.driver.sim import OnnxModel, SimModelError, open_sim
from tests.hw.helpers import MVAU_DICT, make_mvau_onnx

W = np.random.default_rng(5).integers(-2, 2, size=(16, 4))


@pytest.fixture
def mvau_bundle(tmp_path):
    make_mvau_onnx(tmp_path / "mvau.onnx", W)
    (tmp_path / "accel_meta.json").write_text(json.dumps(MVAU_DICT))
    return tmp_path


def test_onnx_model_runs_finn_execute_onnx_on_the_dma_bytes(mvau_bundle):
    meta = load_meta(mvau_bundle)
    acc = open_sim(meta, OnnxModel(meta, meta.path("hw_onnx")))
    x = np.random.default_rng(0).integers(0, 256, size=(5, 16), dtype=np.uint8)
    y = acc.execute(x)
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, x.astype(np.int64) @ W)  # MVAU = matmul, no activation
    assert acc.device.stats["frames"] == 5


def test_onnx_model_rejects_graphs_that_do_not_match_the_metadata(mvau_bundle):
    d = copy.deepcopy(MVAU_DICT)
    d["outputs"].append(dict(d["outputs"][0], name="other", dma="odma1"))
    (mvau_bundle / "accel_meta.json").write_text(json.dumps(d))
    meta = load_meta(mvau_bundle)
    with pytest.raises(SimModelError, match=r"ONNX graph outputs \['global_out'\] do not match "
                                            r"the metadata's \['global_out', 'other'\]"):
        OnnxModel(meta, meta.path("hw_onnx"))


def test_model_output_outside_the_output_datatype_is_an_error(mvau_bundle):
    from hw.driver.sim import ReferenceModel

    meta = load_meta(mvau_bundle)
    acc = open_sim(meta, ReferenceModel(meta, lambda x: np.full((x.shape[0], 4), 40000)))
    with pytest.raises(SimModelError, match=r"model output global_out contains 40000, outside "
                                            r"INT16 \[-32768, 32767\]"):
        acc.execute(np.zeros((1, 16), np.uint8))
