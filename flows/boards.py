# SPDX-License-Identifier: BSD-3-Clause
"""The board registry: every board-specific fact in one table.

Resource totals are the device datasheet figures (LUT, FF, BRAM18, URAM, DSP) of the part on the
board; FINN's own ``Platform`` classes reserve a little of them for its infrastructure. The
default clock is the synthesis target used for estimates (finn-examples builds the BNN
accelerators at 200 MHz on UltraScale+ boards; 100 MHz on the Zynq-7000 boards).

``hw/`` re-exports this module (hw depends on flows, never the reverse).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bnn_brevitas.errors import UnknownNameError


@dataclass(frozen=True)
class Resources:
    lut: int
    ff: int
    bram18: int
    uram: int
    dsp: int

    def as_finn(self) -> dict[str, int]:
        """In the key spelling of FINN's resource estimates."""
        return {"LUT": self.lut, "FF": self.ff, "BRAM_18K": self.bram18, "URAM": self.uram,
                "DSP": self.dsp}


@dataclass(frozen=True)
class Board:
    name: str
    #: the board name FINN and PYNQ use (``pynq_part_map`` key)
    finn_name: str
    part: str
    family: str
    #: FINN shell flow: "vivado_zynq" for every board here
    shell_flow: str
    default_clk_mhz: float
    #: native AXI HP port width in bits (FINN's ``pynq_native_port_width``)
    axi_port_width: int
    resources: Resources
    #: whether ``pynq.get_rails()`` reports power rails on this board's PYNQ image (PMBus/INA)
    power_rails: bool

    @property
    def clk_ns(self) -> float:
        return 1000.0 / self.default_clk_mhz

    def to_dict(self) -> dict:
        return asdict(self)


_ZYNQ7020 = Resources(lut=53_200, ff=106_400, bram18=280, uram=0, dsp=220)
_ZU3EG = Resources(lut=70_560, ff=141_120, bram18=432, uram=0, dsp=360)

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("zcu104", "ZCU104", "xczu7ev-ffvc1156-2-e", "zynq_us+", "vivado_zynq", 200.0, 128,
          Resources(lut=230_400, ff=460_800, bram18=624, uram=96, dsp=1_728), True),
    Board("zcu102", "ZCU102", "xczu9eg-ffvb1156-2-e", "zynq_us+", "vivado_zynq", 200.0, 128,
          Resources(lut=274_080, ff=548_160, bram18=1_824, uram=0, dsp=2_520), True),
    Board("kv260", "KV260_SOM", "xck26-sfvc784-2LV-c", "zynq_us+", "vivado_zynq", 200.0, 128,
          Resources(lut=117_120, ff=234_240, bram18=288, uram=64, dsp=1_248), False),
    Board("ultra96-v2", "Ultra96-V2", "xczu3eg-sbva484-1-i", "zynq_us+", "vivado_zynq", 150.0,
          128, _ZU3EG, False),
    Board("pynq-z2", "Pynq-Z2", "xc7z020clg400-1", "zynq7000", "vivado_zynq", 100.0, 64,
          _ZYNQ7020, False),
    Board("pynq-z1", "Pynq-Z1", "xc7z020clg400-1", "zynq7000", "vivado_zynq", 100.0, 64,
          _ZYNQ7020, False),
)}


def list_boards() -> list[str]:
    return sorted(BOARDS)


def get_board(name: str) -> Board:
    """Look up a board by name (case-insensitive; FINN's spelling such as "ZCU104" works too)."""
    key = str(name).lower()
    for b in BOARDS.values():
        if key in (b.name, b.finn_name.lower()):
            return b
    raise UnknownNameError("board", name, list_boards())
