# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/quant.py: bit widths of every registered model, exact scales, progressive sign."""

from __future__ import annotations

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

import bnn_brevitas as bb
from bnn_brevitas import quant as q


def _quant_layers(model):
    for name, m in model.named_modules():
        if isinstance(m, (QuantConv2d, QuantLinear, QuantIdentity, QuantReLU)):
            yield name, m


@pytest.mark.parametrize("name", bb.list_models())
def test_every_quantized_layer_has_its_documented_bit_width(name):
    model = bb.create_model(name)
    n_weight = n_act = 0
    for lname, m in _quant_layers(model):
        if isinstance(m, (QuantConv2d, QuantLinear)):
            assert hasattr(m, "expected_weight_bits"), f"{name}.{lname}: built outside quant.py"
            assert int(m.quant_weight().bit_width) == m.expected_weight_bits, f"{name}.{lname}"
            n_weight += 1
        else:
            assert hasattr(m, "expected_act_bits"), f"{name}.{lname}: built outside quant.py"
            assert int(m.act_quant.bit_width()) == m.expected_act_bits, f"{name}.{lname}"
            n_act += 1
    assert n_weight > 0 and n_act > 0


@pytest.mark.parametrize("name", [n for n in bb.list_models("bnext")])
def test_bnext_precision_map(name):
    model = bb.create_model(name)
    mods = dict(model.named_modules())
    binary = [n for n in mods if n.endswith("binary_conv")]
    assert binary, "no binary convs"
    for n in binary:
        assert mods[n].expected_weight_bits == 1 and mods[n].input_bits == 1
        assert mods[n.replace("binary_conv", "sign")].expected_act_bits == 1
    assert mods["stem.conv"].expected_weight_bits == 8 and mods["stem.conv"].input_bits == 8
    assert mods["stem.input_quant"].expected_act_bits == 8
    assert mods["head.fc"].expected_weight_bits == 8 and mods["head.fc"].input_bits == 8


def test_binary_weights_and_activations_have_scale_exactly_one():
    conv = q.binary_conv2d(4, 6, 3, padding=1)
    w = conv.quant_weight()
    assert float(w.scale) == 1.0
    assert set(w.value.unique().tolist()) <= {-1.0, 1.0}
    act = q.binary_act(return_quant_tensor=True)
    y = act(torch.tensor([-2.0, -0.1, 0.0, 0.3, 5.0]))
    assert y.value.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert float(y.scale) == 1.0 and int(y.bit_width) == 1


def test_input_quant_is_the_uint8_pixel_grid():
    iq = q.input_quant()
    pixels = torch.arange(256, dtype=torch.float32)
    y = iq(pixels / 255) * 255
    assert torch.equal(torch.round(y), pixels) and (y - pixels).abs().max() < 1e-4
    assert float(iq.act_quant.scale()) == pytest.approx(1 / 255, rel=1e-7)


@pytest.mark.parametrize("bits", [2, 4])
def test_gate_is_a_k_bit_grid_on_0_1_with_one_half_on_it(bits):
    g = q.gate_act(bits)
    n = 2**bits
    y = g(torch.tensor([-1.0, 0.0, 0.2, 0.5, 0.55, 1.0, 3.0])) * n
    expected = [0, 0, round(0.2 * n), n // 2, round(0.55 * n), n - 1, n - 1]
    assert torch.round(y).tolist() == [float(e) for e in expected]
    assert (y - torch.round(y)).abs().max() < 1e-5
    assert float(g.act_quant.scale()) == pytest.approx(1 / n)


def test_progressive_binarization_soft_while_training_exact_in_eval():
    conv = q.binary_conv2d(8, 8, 3)
    with torch.no_grad():
        conv.weight.uniform_(-0.5, 0.5)
    assert q.set_binarization_temperature(conv, 0.5) == 1
    conv.train()
    soft = conv.quant_weight().value
    assert torch.allclose(soft, (conv.weight / 0.5).clamp(-1, 1))
    assert soft.unique().numel() > 2
    conv.eval()
    assert set(conv.quant_weight().value.unique().tolist()) == {-1.0, 1.0}
    q.set_binarization_temperature(conv, 0.0)
    conv.train()
    assert set(conv.quant_weight().value.unique().tolist()) == {-1.0, 1.0}


def test_progressive_gradient_is_straight_through():
    conv = q.binary_conv2d(2, 2, 1)
    q.set_binarization_temperature(conv, 0.1)
    conv.train()
    conv.quant_weight().value.sum().backward()
    assert torch.equal(conv.weight.grad, torch.ones_like(conv.weight))
