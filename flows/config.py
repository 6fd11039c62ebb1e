# SPDX-License-Identifier: BSD-3-Clause
"""``FlowConfig``: everything one compilation needs, loaded from YAML with CLI overrides.

The resolved config is written to ``<output_dir>/flow_config.yaml`` by every run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from qonnx.core.datatype import DataType

from bnn_brevitas.config_fields import check_fields, option
from bnn_brevitas.errors import ConfigError

from .boards import Board, get_board, list_boards


def _check_datatype(name: str) -> None:
    """A FINN datatype name the accelerator can take as input (integer or bipolar)."""
    try:
        ok = DataType[name].is_integer()
    except (KeyError, AttributeError):
        ok = False
    if not ok:
        raise ConfigError(f"input_datatype: {name!r} is not an integer FINN datatype; valid: "
                          "BIPOLAR, BINARY, UINT<n>, INT<n> (e.g. UINT8, INT4)")


MEM_MODES = ("auto", "internal_embedded", "internal_decoupled", "external")
IMPL_STYLES = ("auto", "rtl", "hls")
BINARY_MVAU_BACKENDS = ("rtl", "hls")
FIFO_SIZINGS = ("analytic", "rtlsim")


@dataclass
class FlowConfig:
    """Configuration of a FINN compilation (every field can be set in YAML or with --set).

    Types and choices are checked from the field declarations (``bnn_brevitas.config_fields``,
    as for ``TrainConfig``); ranges and combinations in ``__post_init__``. The board is
    resolved once, here: ``board`` holds its registry name and ``board_info`` the record every
    later step, the bitstream build and the driver metadata read.
    """

    model: str | None = option(None, "registry model to compile (fresh weights, or "
                                     "``checkpoint``'s if that is given)")
    checkpoint: Path | None = option(None, "a training checkpoint to compile (``python -m "
                                           "bnn_brevitas.train`` writes them)")
    onnx: Path | None = option(None, "an existing QONNX file to compile (instead of "
                                     "model/checkpoint)")
    model_overrides: dict[str, Any] = option({}, "model overrides when compiling a fresh "
                                                 "registry model")
    board: str = option("zcu104", "board name (see ``flows.boards.list_boards()``; FINN's "
                                  "spelling such as ZCU104 works too)", list_boards)
    input_datatype: str | None = option(None, "the accelerator's input codes (a FINN datatype, "
                                              "e.g. UINT8), with input_scale; default: read "
                                              "from the model (flows/transforms/graph_input.py)")
    input_scale: float | None = option(None, "the model's float input = input code × this "
                                             "(e.g. 1/255 for pixels); with input_datatype")
    clk_mhz: float | None = option(None, "synthesis clock in MHz; default: the board's")
    target_fps: float | None = option(None, "folding goal: frames per second; None = the "
                                            "fastest design within ``resource_budget``")
    resource_budget: float = option(0.7, "fraction of the board's LUT/BRAM/URAM/DSP the design "
                                         "may use (auto folding)")
    folding_file: Path | None = option(None, "a folding JSON (as written to "
                                             "<output_dir>/folding.json) that overrides auto "
                                             "folding")
    mem_mode: str = option("auto", "where weights live: FINN's ``mem_mode`` for every MVAU "
                                   "(external streams them from DRAM); auto keeps them on chip "
                                   "while BRAM/URAM fit the budget (see flows.folding)", MEM_MODES)
    impl_style: str = option("auto", "implementation style for layers that have both: auto lets "
                                     "FINN choose", IMPL_STYLES)
    binary_mvau: str = option("rtl", "binary (XNOR) MVAUs: rtl = the project's RTL unit "
                                     "(flows/rtl), hls = FINN's HLS one", BINARY_MVAU_BACKENDS)
    project_rtl: bool = option(True, "the project's RTL units for the other layers FINN has only "
                                     "as HLS (pools, ...)")
    split_mvau_thresholds: bool = option(True, "non-binary MVAUs with thresholds become MVAU_rtl "
                                               "+ Thresholding_rtl (RTL, DSP-based) instead of "
                                               "one HLS MVAU (flows/transforms/split_thresholds)")
    min_fifo_depth: int = option(2, "every stream's FIFO holds at least this many words (FINN's "
                                    "shallow default: 2)")
    fifo_sizing: str = option("analytic", "FIFO depths: analytic (flows/fifos.py), or rtlsim: "
                                          "each FIFO's peak fill in a Verilator simulation of "
                                          "the whole accelerator with unbounded FIFOs (FINN's "
                                          "method)", FIFO_SIZINGS)
    standalone_thresholds: bool = option(False, "keep thresholds as separate layers instead of "
                                                "merging them into the MVAUs")
    driver_batch_max: int = option(1024, "largest batch the driver's DMA buffers are allocated "
                                         "for (accel_meta.json ``batch_max``)")
    output_dir: Path | None = option(None, "output directory (default build/<model>_<board>)")
    from_step: str | None = option(None, "first step to run (names from flows.pipeline.STEPS)")
    to_step: str | None = option(None, "last step to run")
    calibrate_fresh: bool = option(True, "seeded calibration passes for a fresh registry model "
                                         "(non-trivial scales and thresholds)")
    seed: int = option(0, "random seed (calibration, golden vectors, simulation stimuli)")
    #: the board record of ``board``, resolved once (not a config field: not saved)
    board_info: Board = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("checkpoint", "onnx", "folding_file", "output_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                setattr(self, name, Path(v))
        if isinstance(self.board, str):  # FINN's spelling (ZCU104) → the registry's name
            self.board_info = get_board(self.board)  # raises with the list of valid boards
            self.board = self.board_info.name
        for name in ("clk_mhz", "input_scale"):
            v = getattr(self, name)
            if isinstance(v, int) and not isinstance(v, bool):
                setattr(self, name, float(v))
        check_fields(self)
        sources = [s for s in ("model", "checkpoint", "onnx") if getattr(self, s)]
        if self.checkpoint and self.onnx or self.model and self.onnx:
            raise ConfigError(f"give one of model, checkpoint or onnx, not {sources}")
        if not sources:
            raise ConfigError("nothing to compile: set model, checkpoint or onnx")
        rules = [
            ("resource_budget", 0 < self.resource_budget <= 1, "must be in (0, 1]"),
            ("target_fps", self.target_fps is None or self.target_fps > 0, "must be > 0"),
            ("min_fifo_depth", self.min_fifo_depth >= 2, "must be at least 2"),
            ("clk_mhz", self.clk_mhz is None or 10 <= self.clk_mhz <= 800, "must be in [10, 800]"),
            ("driver_batch_max", self.driver_batch_max >= 1, "must be at least 1"),
            ("input_scale", self.input_scale is None or self.input_scale > 0, "must be > 0"),
            ("input_scale", (self.input_scale is None) == (self.input_datatype is None),
             "goes with input_datatype: give both or neither"),
        ]
        for name, ok, rule in rules:
            if not ok:
                raise ConfigError(f"{name}: {rule}, got {getattr(self, name)!r}")
        if self.input_datatype is not None:
            _check_datatype(self.input_datatype)

    @property
    def clock_mhz(self) -> float:
        """The synthesis clock: ``clk_mhz``, else the board's default."""
        return float(self.clk_mhz or self.board_info.default_clk_mhz)

    @property
    def clk_ns(self) -> float:
        """The synthesis clock period in ns (FINN's ``synth_clk_period_ns``)."""
        return 1000.0 / self.clock_mhz

    @property
    def name(self) -> str:
        if self.model:
            return self.model
        return (self.checkpoint or self.onnx).stem

    @property
    def out_dir(self) -> Path:
        return self.output_dir or Path("build") / f"{self.name}_{self.board}"

    def to_dict(self) -> dict[str, Any]:
        """The config fields (not the resolved board record), paths as strings."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> FlowConfig:
        """From a YAML file (optional) with ``overrides`` on top; unknown keys are errors."""
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"flow config {str(p)!r} does not exist")
            data = yaml.safe_load(p.read_text()) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{str(p)!r} must hold a mapping of FlowConfig fields")
        data.update({k: v for k, v in overrides.items() if v is not None})
        valid = [f.name for f in dataclasses.fields(cls) if f.init]
        bad = sorted(set(data) - set(valid))
        if bad:
            raise ConfigError(f"unknown flow config field(s) {bad}; valid: {', '.join(valid)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"invalid flow config: {e}") from None
