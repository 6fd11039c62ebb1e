# SPDX-License-Identifier: BSD-3-Clause
"""Cost metrics of a model: parameters, BOPs, FLOPs, OPs and PokeBNN's ACE, per layer and total.

Definitions (``../shared/notes/bnext.md`` §5):

* **MACs** of a conv/linear layer = H_out·W_out·C_out·(k²·C_in/groups) (per image).
* **BOPs** = MACs of layers with 1-bit weights *and* 1-bit inputs (XNOR-popcount).
* **FLOPs** = all other MACs (a MAC counts as one FLOP, the BNN-paper convention).
* **OPs** = BOPs/64 + FLOPs (Bi-Real/ReActNet; "CPU64" in PokeBNN).
* **ACE** = Σ MACs × b_w × b_a (PokeBNN). Float operands are costed at ``float_bits`` (16 by
  default, the convention under which PokeBNN's published ReActNet figure reproduces).

Elementwise work (BN, PReLU, adds, gates, pooling) is not counted, as in both papers.
Bit widths come from the layer annotations made by ``bnn_brevitas.quant`` (``expected_weight_bits``
and ``input_bits``); an unannotated layer is float.

The CLI follows the exit-code contract (``bnn_brevitas.errors``); ``--json`` is checked before
the model is built and written atomically (``bnn_brevitas.outputs``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .models import create_model
from .outputs import atomic_write_file, check_output_file
from .utils import module_logger, parse_overrides, run_cli, setup_logging

log = module_logger(__spec__, __name__)


@dataclass
class LayerCost:
    name: str
    kind: str
    out_shape: tuple[int, ...]
    weight_bits: int | None
    input_bits: int | None
    params: int
    macs: int

    @property
    def binary(self) -> bool:
        return self.weight_bits == 1 and self.input_bits == 1

    def ace(self, float_bits: int) -> int:
        return self.macs * (self.weight_bits or float_bits) * (self.input_bits or float_bits)


@dataclass
class ModelCost:
    model: str
    input_shape: tuple[int, ...]
    params: int
    binary_params: int
    bops: int
    flops: int
    ops: float
    ace: int
    float_bits: int
    layers: list[LayerCost]

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("layers")
        d["nonbinary_params"] = self.params - self.binary_params
        d["binarization_degree"] = (self.bops / 64) / self.ops if self.ops else 0.0
        return d


def count_costs(model: nn.Module, input_shape: tuple[int, ...], float_bits: int = 16,
                name: str = "") -> ModelCost:
    """Run one forward pass with hooks on every conv/linear layer and tally the costs."""
    layers: list[LayerCost] = []
    hooks = []

    def hook(mod: nn.Module, _inp, out) -> None:
        out_t = out.value if hasattr(out, "value") else out
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            per_out = k * mod.in_channels // mod.groups
            macs = int(out_t[0].numel()) * per_out
        else:
            macs = int(out_t[0].numel()) * mod.in_features
        layers.append(LayerCost(
            name=mod._cost_name, kind=type(mod).__name__, out_shape=tuple(out_t.shape[1:]),
            weight_bits=getattr(mod, "expected_weight_bits", None),
            input_bits=getattr(mod, "input_bits", None),
            params=sum(p.numel() for p in mod.parameters(recurse=False)), macs=macs,
        ))

    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m._cost_name = n
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    params = sum(p.numel() for p in model.parameters())
    binary_params = sum(lc.params for lc in layers if lc.weight_bits == 1)
    bops = sum(lc.macs for lc in layers if lc.binary)
    flops = sum(lc.macs for lc in layers if not lc.binary)
    return ModelCost(
        model=name, input_shape=tuple(input_shape), params=params, binary_params=binary_params,
        bops=bops, flops=flops, ops=bops / 64 + flops,
        ace=sum(lc.ace(float_bits) for lc in layers), float_bits=float_bits, layers=layers,
    )


def model_costs(name: str, float_bits: int = 16, **overrides) -> ModelCost:
    """Costs of a registry model (see :func:`count_costs`)."""
    model = create_model(name, **overrides)
    return count_costs(model, model.cfg.input_shape, float_bits, name)


def format_table(cost: ModelCost, per_layer: bool = False) -> str:
    lines = []
    if per_layer:
        lines.append(f"{'layer':<44} {'kind':<12} {'W':>3} {'A':>3} {'params':>10} {'MACs':>14}")
        for lc in cost.layers:
            lines.append(f"{lc.name:<44} {lc.kind:<12} {lc.weight_bits or 'fp':>3} "
                         f"{lc.input_bits or 'fp':>3} {lc.params:>10,} {lc.macs:>14,}")
        lines.append("")
    s = cost.summary()
    lines += [
        f"model            {cost.model}  input {cost.input_shape}",
        f"params           {s['params']:,} ({s['params'] / 1e6:.2f} M)",
        f"binary params    {s['binary_params']:,} ({s['binary_params'] / 1e6:.2f} M)",
        f"BOPs             {s['bops']:,} ({s['bops'] / 1e9:.3f} G)",
        f"FLOPs            {s['flops']:,} ({s['flops'] / 1e6:.2f} M)",
        f"OPs              {s['ops'] / 1e9:.4f} G  (BOPs/64 + FLOPs)",
        f"ACE              {s['ace']:,} ({s['ace'] / 1e9:.3f} G, float at {cost.float_bits} bits)",
        f"binarization     {100 * s['binarization_degree']:.2f} % of OPs",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bnn_brevitas.metrics", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="registry name (see --list)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a model config field, e.g. --set img_size=32 (repeatable)")
    ap.add_argument("--float-bits", type=int, default=16, help="ACE bit width of float operands")
    ap.add_argument("--per-layer", action="store_true", help="print the per-layer table")
    ap.add_argument("--json", type=Path, help="also write the costs (with layers) to this file")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        if args.json:
            check_output_file(args.json)
        cost = model_costs(args.model, args.float_bits, **parse_overrides(args.set))
        print(format_table(cost, args.per_layer))  # noqa: T201 (CLI output)
        if args.json:
            data = cost.summary() | {"layers": [asdict(lc) for lc in cost.layers]}
            atomic_write_file(args.json, json.dumps(data, indent=2))

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    raise SystemExit(main())
