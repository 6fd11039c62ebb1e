# SPDX-License-Identifier: BSD-3-Clause
"""FINN-generated deploy folders for the interoperability tests, without Vivado.

:func:`make_finn_plus_deploy` runs finn-plus 1.6.1's own transformations on a build's folded HW
graph: the tool-free prefix of ``ZynqBuild`` (``InsertIODMA``, ``InsertDWC``,
``SpecializeLayers``, ``Floorplan``, ``CreateDataflowPartition``), the DMA naming rule of
``MakeZYNQProject`` (the one Vivado step replicated: ``idma<i>`` for a partition without
producer, ``odma<i>`` without consumer), then ``MakePYNQDriver("zynq-iodma",
"FINNDMAOverlay")``. It lays the result out as ``step_deployment_package`` does:
``bitfile/finn-accel.{bit,hwh}`` (placeholders: no Vivado; the HWH holds only a
``clk_wiz_0`` like finn-plus's shell) and ``driver/settings.json``.

:func:`make_upstream_deploy` writes upstream FINN's ``driver/driver.py`` from its verbatim
template (``fixtures/finn_upstream/driver.py.template``) with ``MakePYNQDriver``'s own
``replace()`` rules, for the same ``io_shape_dict``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM_TEMPLATE = FIXTURES / "finn_upstream" / "driver.py.template"
ZCU104_PART = "xczu7ev-ffvc1156-2-e"
#: the accelerator clock the placeholder HWH's Clocking Wizard reports
HWH_CLK_WIZ_MHZ = 200.0
PLACEHOLDER_BIT = b"placeholder bitstream: no Vivado here; only the emulator opens it\n"


def placeholder_hwh(clk_mhz: float = HWH_CLK_WIZ_MHZ) -> str:
    """A minimal HWH: the ``clk_wiz_0`` module finn-plus's driver reads (no AXI-Lite, so not
    in pynq's ``ip_dict``)."""
    return (f'<?xml version="1.0"?>\n<EDKSYSTEM><MODULES>\n'
            f'<MODULE INSTANCE="clk_wiz_0" MODTYPE="clk_wiz"><PARAMETERS>\n'
            f'<PARAMETER NAME="CLKOUT1_REQUESTED_OUT_FREQ" VALUE="{clk_mhz}"/>\n'
            f'<PARAMETER NAME="CLKOUT1_OUT_FREQ" VALUE="{clk_mhz:.5f}"/>\n'
            f'<PARAMETER NAME="PRIM_IN_FREQ" VALUE="100.000"/>\n'
            f'</PARAMETERS></MODULE>\n</MODULES></EDKSYSTEM>\n')


def _write_bitfile(out: Path) -> None:
    (out / "bitfile").mkdir(parents=True, exist_ok=True)
    (out / "bitfile" / "finn-accel.bit").write_bytes(PLACEHOLDER_BIT)
    (out / "bitfile" / "finn-accel.hwh").write_text(placeholder_hwh())


def make_finn_plus_deploy(graph: Path, out: Path, work: Path, *, clk_ns: float,
                          fpga_part: str = ZCU104_PART) -> dict:
    """finn-plus's deploy folder for the folded HW graph ``graph`` (see the module docstring);
    returns its ``settings.json``. ``work`` holds FINN's scratch files."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.floorplan import Floorplan
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
    from finn.transformation.fpgadataflow.make_driver import MakePYNQDriver
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

    from flows.finn_env import load_model, prepare_finn

    prepare_finn(work)
    model = load_model(graph).transform(SpecializeLayers(fpga_part))
    for t in (InsertIODMA(64), InsertDWC(), SpecializeLayers(fpga_part), Floorplan(),
              CreateDataflowPartition(partition_model_dir=str(work / "partitions"))):
        model = model.transform(t).transform(GiveUniqueNodeNames()) \
            .transform(GiveReadableTensorNames())
    n_in = n_out = 0
    for node in model.graph.node:  # MakeZYNQProject's instance names (finn/.../make_zynq_proj.py)
        if model.find_producer(node.input[0]) is None:
            getCustomOp(node).set_nodeattr("instance_name", f"idma{n_in}")
            n_in += 1
        elif not model.find_consumers(node.output[0]):
            getCustomOp(node).set_nodeattr("instance_name", f"odma{n_out}")
            n_out += 1
    model = model.transform(MakePYNQDriver("zynq-iodma", "FINNDMAOverlay", clk_period_ns=clk_ns))
    shutil.copytree(model.get_metadata_prop("pynq_driver_dir"), out / "driver", dirs_exist_ok=True)
    _write_bitfile(out)
    return json.loads((out / "driver" / "settings.json").read_text())


def render_upstream_driver_py(isd: dict, platform: str = "zynq-iodma") -> str:
    """Upstream FINN's ``driver.py`` for finn-plus's ``io_shape_dict`` ``isd`` (same values,
    upstream's keys), by ``MakePYNQDriver``'s replace rules."""
    text = UPSTREAM_TEMPLATE.read_text()
    def tup(shapes):  # upstream's driver shapes are tuples
        return str([tuple(s) for s in shapes])

    rules = {"$PLATFORM$": platform,
             "$INPUT_FINN_DATATYPE$": str(list(isd["idt"])).replace('"', ""),
             "$INPUT_SHAPE_NORMAL$": tup(isd["ishape_normal"]),
             "$INPUT_SHAPE_FOLDED$": tup(isd["ishape_folded"]),
             "$INPUT_SHAPE_PACKED$": tup(isd["ishape_packed"]),
             "$OUTPUT_FINN_DATATYPE$": str(list(isd["odt"])).replace('"', ""),
             "$OUTPUT_SHAPE_NORMAL$": tup(isd["oshape_normal"]),
             "$OUTPUT_SHAPE_FOLDED$": tup(isd["oshape_folded"]),
             "$OUTPUT_SHAPE_PACKED$": tup(isd["oshape_packed"]),
             "$INPUT_DMA_NAME$": str(list(isd["idma_names"])),
             "$OUTPUT_DMA_NAME$": str(list(isd["odma_names"])),
             "$NUM_INPUTS$": str(len(isd["idma_names"])),
             "$NUM_OUTPUTS$": str(len(isd["odma_names"])),
             "$EXT_WEIGHT_NUM$": str(isd.get("number_of_external_weights", 0))}
    for key, val in rules.items():
        text = text.replace(key, val)
    assert "$" not in text.split("\n", 3)[3], "an unfilled template field"
    return text


def make_upstream_deploy(isd: dict, out: Path, platform: str = "zynq-iodma") -> Path:
    """Upstream FINN's deploy layout: ``driver/driver.py`` + ``bitfile/finn-accel.*``."""
    (out / "driver").mkdir(parents=True, exist_ok=True)
    (out / "driver" / "driver.py").write_text(render_upstream_driver_py(isd, platform))
    _write_bitfile(out)
    return out
