# SPDX-License-Identifier: BSD-3-Clause
"""FINN's reference networks, as a FINN user exports them: ``python -m bnn_brevitas.zoo``.

The models are ``brevitas_examples.bnn_pynq``'s own (TFC, SFC, LFC and CNV at every bit width
it ships, and ``resnet18_4w4a``), built by its ``model_with_cfg`` with fresh seeded weights
(nothing is downloaded), BatchNorm statistics calibrated by seeded train-mode passes, and
exported with Brevitas's own ``brevitas.export.export_qonnx``: none of this project's model
or export code is involved, so the files are what a user brings to ``flows.pipeline --onnx``.
The name and options are checked before anything is built, and the file is written atomically
(``bnn_brevitas.outputs``): a failed export leaves an existing file byte-identical.

======================  =========================  ==================================
name                    input (N, …)               what the first layer takes
======================  =========================  ==================================
``tfc/sfc/lfc_*``       1×1×28×28 (or 1×784)       [0, 1] floats, binarised or 2-bit
``cnv_*``               1×3×32×32                  [0, 1] floats (``2x − 1``, 8-bit)
``resnet18_4w4a``       1×3×32×32                  CIFAR-10 normalised floats
======================  =========================  ==================================
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from . import _compat  # noqa: F401  (torch 2.13 shim for brevitas, see _compat)
from .errors import UnknownNameError, UserError
from .outputs import atomic_write_file, check_output_file
from .utils import module_logger, run_cli, setup_logging

log = module_logger(__spec__, __name__)


@dataclass(frozen=True)
class ZooModel:
    """One reference network: its ``brevitas_examples`` cfg name and its input shape."""

    name: str
    input_shape: tuple[int, ...]
    #: the pixel-code datatype and scale a FINN user states for it (``--input-datatype`` and
    #: ``--input-scale``): the float input the network takes is code × scale
    input_datatype: str = "UINT8"
    input_scale: float = 1.0 / 255.0
    #: export with torch's TorchScript exporter (``dynamo=False``): brevitas 0.13's dynamo
    #: path cannot trace resnet18's residual adds of QuantTensors ("Perform add among
    #: QuantTensors"), the TorchScript path can
    torchscript: bool = False


_FC = (1, 28, 28)
ZOO: dict[str, ZooModel] = {m.name: m for m in (
    *(ZooModel(f"{a}_{b}", _FC) for a in ("tfc", "sfc") for b in ("1w1a", "1w2a", "2w2a")),
    ZooModel("lfc_1w1a", _FC), ZooModel("lfc_1w2a", _FC),
    *(ZooModel(f"cnv_{b}", (3, 32, 32)) for b in ("1w1a", "1w2a", "2w2a")),
    ZooModel("resnet18_4w4a", (3, 32, 32), torchscript=True),
)}


def list_zoo() -> list[str]:
    return sorted(ZOO)


def build(name: str, seed: int = 0, calib_steps: int = 4, batch: int = 16) -> nn.Module:
    """The network with seeded weights and calibrated BatchNorm statistics, in eval mode."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    if name not in ZOO:
        raise UnknownNameError("zoo model", name, ZOO)
    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(calib_steps):
            x = torch.randint(0, 256, (batch, *ZOO[name].input_shape), generator=g) / 255.0
            model(x.float())
    return model.eval()


def export(name: str, path: str | Path, seed: int = 0, flat_input: bool = False) -> Path:
    """Export ``name`` with Brevitas's own QONNX exporter to ``path`` (as it comes, no cleanup;
    only its external-data file is folded into the one ONNX file); ``flat_input``: an MLP is
    exported with a 1×784 input instead of 1×1×28×28."""
    from brevitas.export import export_qonnx

    if name not in ZOO:
        raise UnknownNameError("zoo model", name, ZOO)
    if flat_input and name.startswith(("cnv", "resnet")):
        raise UserError(f"{name}: flat_input applies to the MLPs (tfc, sfc, lfc) only")
    path = check_output_file(path)
    spec = ZOO[name]
    shape = (int(torch.tensor(spec.input_shape).prod()),) if flat_input else spec.input_shape
    model = build(name, seed)
    x = torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed))

    def write(raw: Path) -> None:  # torch's exporter may write external data beside it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_qonnx(model, x, export_path=str(raw), dynamo=not spec.torchscript)
        onnx.save(onnx.load(str(raw)), str(raw))  # one self-contained file, nothing else

    atomic_write_file(path, write)
    log.info("exported %s → %s (input %s)", name, path, "×".join(map(str, (1, *shape))))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bnn_brevitas.zoo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", nargs="?", help="zoo model (see --list)")
    ap.add_argument("-o", "--output", type=Path, help="ONNX file (default build/zoo/NAME.onnx)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flat-input", action="store_true", help="MLPs: 1×784 input")
    ap.add_argument("--list", action="store_true", help="print the zoo and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    if args.list or not args.name:
        for n in list_zoo():
            print(n, "×".join(map(str, ZOO[n].input_shape)))  # noqa: T201 (CLI output)
        return 0

    def body() -> None:
        export(args.name, args.output or Path("build/zoo") / f"{args.name}.onnx", args.seed,
               args.flat_input)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    raise SystemExit(main())
