# SPDX-License-Identifier: BSD-3-Clause
"""The board registry: every board-specific fact in one table.

Resource totals are the device datasheet figures (LUT, FF, BRAM18, URAM, DSP) of the part on the
board; FINN's own ``Platform`` classes reserve a little of them for its infrastructure. The
default clock is the synthesis target used for estimates (200 MHz on the UltraScale+ boards,
100 MHz on the Zynq-7000 boards and the AUP-ZU3). ``hw/`` reads this module (hw depends on
flows, never the reverse).
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
class Shell:
    """How FINN integrates the accelerator on a kind of board, and what the driver then sees."""

    #: FINN's ``ShellFlowType`` value
    flow: str
    #: the driver platform (``accel_meta.json`` ``platform``; ``hw.driver.meta.PLATFORMS``)
    driver_platform: str
    #: FINN's shell names its input/output DMA engines ``<prefix><index>``
    idma_prefix: str
    odma_prefix: str
    #: the PS clock the shell expects on PL0 (``accel_meta.json`` ``clock.driver_mhz``): FINN's
    #: Zynq shell feeds PL0 into a clocking wizard (MMCM) that makes the design clock, so PL0
    #: stays at the wizard's reference; None: PL0 is the design clock itself
    pl_ref_mhz: float | None = None

    def idma(self, index: int = 0) -> str:
        return f"{self.idma_prefix}{index}"

    def odma(self, index: int = 0) -> str:
        return f"{self.odma_prefix}{index}"


#: FINN's Vivado Zynq shell: the partition between an input and an output IODMA, driven from
#: the PS (FINN's ``make_pynq_driver`` with ``platform = "zynq-iodma"``)
#: (finn-plus ``transformation/fpgadataflow/templates.py``: ``PL0_REF_CTRL__FREQMHZ {100}``,
#: then ``clk_wiz_0`` with ``CLKOUT1_REQUESTED_OUT_FREQ $FREQ_MHZ`` clocks the design)
VIVADO_ZYNQ = Shell("vivado_zynq", "zynq-iodma", "idma", "odma", pl_ref_mhz=100.0)


@dataclass(frozen=True)
class Board:
    name: str
    #: the board name FINN and PYNQ use (``pynq_part_map`` key)
    finn_name: str
    part: str
    #: how FINN builds the bitstream and how the driver talks to it
    shell: Shell
    default_clk_mhz: float
    #: native AXI HP port width in bits (FINN's ``pynq_native_port_width``; hw/bitstream checks
    #: that the installed FINN agrees before it builds)
    axi_port_width: int
    resources: Resources
    #: whether ``pynq.get_rails()`` reports power rails on this board's PYNQ image (PMBus/INA);
    #: written to the driver metadata, so that profiling says why power is not measured
    power_rails: bool

    @property
    def clk_ns(self) -> float:
        return 1000.0 / self.default_clk_mhz

    def to_dict(self) -> dict:
        return asdict(self)


_ZYNQ7020 = Resources(lut=53_200, ff=106_400, bram18=280, uram=0, dsp=220)
_ZU3EG = Resources(lut=70_560, ff=141_120, bram18=432, uram=0, dsp=360)

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("zcu104", "ZCU104", "xczu7ev-ffvc1156-2-e", VIVADO_ZYNQ, 200.0, 128,
          Resources(lut=230_400, ff=460_800, bram18=624, uram=96, dsp=1_728), True),
    Board("zcu102", "ZCU102", "xczu9eg-ffvb1156-2-e", VIVADO_ZYNQ, 200.0, 128,
          Resources(lut=274_080, ff=548_160, bram18=1_824, uram=0, dsp=2_520), True),
    Board("kv260", "KV260_SOM", "xck26-sfvc784-2LV-c", VIVADO_ZYNQ, 200.0, 128,
          Resources(lut=117_120, ff=234_240, bram18=288, uram=64, dsp=1_248), False),
    Board("ultra96-v2", "Ultra96-V2", "xczu3eg-sbva484-1-i", VIVADO_ZYNQ, 150.0, 128, _ZU3EG,
          False),
    # AMD's AUP-ZU3 (8 GB), the board finn-examples' published BNN figures were measured on;
    # part as in FINN's pynq_part_map; 100 MHz as finn-examples builds its BNN-PYNQ networks
    # (build/bnn-pynq/build.py: synth_clk_period_ns=10.0); power rails not verified here
    Board("aup-zu3", "AUP-ZU3_8GB", "xczu3eg-sfvc784-2-e", VIVADO_ZYNQ, 100.0, 128, _ZU3EG,
          False),
    Board("pynq-z2", "Pynq-Z2", "xc7z020clg400-1", VIVADO_ZYNQ, 100.0, 64, _ZYNQ7020, False),
    Board("pynq-z1", "Pynq-Z1", "xc7z020clg400-1", VIVADO_ZYNQ, 100.0, 64, _ZYNQ7020, False),
)}


def list_boards() -> list[str]:
    """The registry's board names, sorted."""
    return sorted(BOARDS)


def get_board(name: str) -> Board:
    """Look up a board by name (case-insensitive; FINN's spelling such as "ZCU104" works too)."""
    key = str(name).lower()
    for b in BOARDS.values():
        if key in (b.name, b.finn_name.lower()):
            return b
    raise UnknownNameError("board", name, list_boards())
