# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/metrics.py: exact counts on a hand-made net, BNext-T/L against bnext.md §1.7."""

from __future__ import annotations

import json

import pytest
from torch import nn

from bnn_brevitas import metrics, quant as q


class _Tiny(nn.Module):
    """8-bit stem 1→4 (3×3, pad 1), binary 4→8 (3×3, pad 1), float FC 8→10 after GAP."""

    def __init__(self):
        super().__init__()
        self.stem = q.int_conv2d(1, 4, 3, 8, padding=1, input_bits=8)
        self.sign = q.binary_act()
        self.conv = q.binary_conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv(self.sign(self.stem(x)))
        return self.fc(x.mean((2, 3)))


def test_counts_of_a_hand_made_net_are_exact():
    cost = metrics.count_costs(_Tiny(), (1, 6, 6), float_bits=16)
    stem_macs, bin_macs, fc_macs = 36 * 4 * 9, 36 * 8 * 36, 80
    assert [lc.macs for lc in cost.layers] == [stem_macs, bin_macs, fc_macs]
    assert cost.bops == bin_macs
    assert cost.flops == stem_macs + fc_macs
    assert cost.ops == bin_macs / 64 + stem_macs + fc_macs
    assert cost.ace == stem_macs * 8 * 8 + bin_macs + fc_macs * 16 * 16
    assert cost.binary_params == 4 * 8 * 9
    assert cost.params == 36 + 288 + 90  # the quantizers of this net hold no parameters


def _close(a, b, rel=0.01):
    return abs(a - b) <= rel * b


def test_bnext_t_matches_the_reference_counts():
    c = metrics.model_costs("bnext_t")
    assert _close(c.params, 30.86e6) and _close(c.binary_params, 28.25e6)
    assert _close(c.bops, 4.817e9)
    assert c.bops == 4_816_896_000  # 224² input, derived from the widths by hand


@pytest.mark.slow
def test_bnext_l_matches_the_reference_counts():
    c = metrics.model_costs("bnext_l")
    assert _close(c.params, 326.55e6) and _close(c.binary_params, 308.31e6)
    assert _close(c.bops, 52.151e9)


def test_nano_binary_weights_by_hand():
    c = metrics.model_costs("bnext_nano_hw")
    # widths 16, 32, 64, 64, 128, 128: (9+2)·16² + (9+2)·32² + (9+1)·64² + (9+2)·64² + (9+1)·128²
    assert c.binary_params == 11 * 256 + 11 * 1024 + 10 * 4096 + 11 * 4096 + 10 * 16384


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert metrics.main(["--model", "cnv_w1a1", "--set", "in_channels=1", "--set", "img_size=28",
                         "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["input_shape"] == [1, 28, 28]
    # CNV: every conv/FC weight is binary; the first conv has an 8-bit input, so it is no BOP
    convs = 9 * (1 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256)
    assert data["binary_params"] == convs + 256 * 512 + 512 * 512 + 512 * 10
    assert data["layers"][0]["input_bits"] == 8 and data["layers"][0]["weight_bits"] == 1
    assert data["flops"] == data["layers"][0]["macs"]
    assert "BOPs" in capsys.readouterr().out
