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

from bnn_brevitas.errors import ConfigError

from .boards import Board, get_board

MEM_MODES = ("auto", "internal_embedded", "internal_decoupled", "external")
IMPL_STYLES = ("auto", "rtl", "hls")
BINARY_MVAU_BACKENDS = ("rtl", "hls")
FIFO_SIZINGS = ("analytic", "rtlsim")


@dataclass
class FlowConfig:
    """Configuration of a FINN compilation (every field can be set in YAML or with --set)."""

    #: registry model to compile (fresh weights, or ``checkpoint``'s if that is given)
    model: str | None = None
    #: a training checkpoint to compile (``python -m bnn_brevitas.train`` writes them)
    checkpoint: Path | None = None
    #: an existing QONNX file to compile (instead of model/checkpoint)
    onnx: Path | None = None
    #: model overrides when compiling a fresh registry model
    model_overrides: dict[str, Any] = field(default_factory=dict)
    #: board name (see ``flows.boards.list_boards()``)
    board: str = "zcu104"
    #: synthesis clock in MHz; default: the board's
    clk_mhz: float | None = None
    #: folding goal: frames per second; None = the fastest design within ``resource_budget``
    target_fps: float | None = None
    #: fraction of the board's LUT/BRAM/URAM/DSP the design may use (auto folding)
    resource_budget: float = 0.7
    #: a folding JSON (as written to ``<output_dir>/folding.json``) that overrides auto folding
    folding_file: Path | None = None
    #: where weights live: FINN's ``mem_mode`` for every MVAU ("external" streams them from
    #: DRAM); "auto" keeps them on chip while BRAM/URAM fit the budget (see flows.folding)
    mem_mode: str = "auto"
    #: implementation style for layers that have both: "auto" lets FINN choose
    impl_style: str = "auto"
    #: binary (XNOR) MVAUs: "rtl" = the project's RTL unit (flows/rtl), "hls" = FINN's HLS one
    binary_mvau: str = "rtl"
    #: the project's RTL units for the other layers FINN has only as HLS (pools, ...)
    project_rtl: bool = True
    #: non-binary MVAUs with thresholds become MVAU_rtl + Thresholding_rtl (RTL, DSP-based)
    #: instead of one HLS MVAU (flows/transforms/split_thresholds.py)
    split_mvau_thresholds: bool = True
    #: every stream's FIFO holds at least this many words (FINN's shallow default: 2)
    min_fifo_depth: int = 2
    #: FIFO depths: "analytic" (flows/fifos.py), or "rtlsim": each FIFO's peak fill in a
    #: Verilator simulation of the whole accelerator with unbounded FIFOs (FINN's method)
    fifo_sizing: str = "analytic"
    #: keep thresholds as separate layers instead of merging them into the MVAUs
    standalone_thresholds: bool = False
    #: output directory (default build/<model>_<board>)
    output_dir: Path | None = None
    #: first and last step to run (names from ``flows.steps.STEPS``)
    from_step: str | None = None
    to_step: str | None = None
    #: seeded calibration passes for a fresh registry model (non-trivial scales and thresholds)
    calibrate_fresh: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("checkpoint", "onnx", "folding_file", "output_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                setattr(self, name, Path(v))
        sources = [s for s in ("model", "checkpoint", "onnx") if getattr(self, s)]
        if self.checkpoint and self.onnx or self.model and self.onnx:
            raise ConfigError(f"give one of model, checkpoint or onnx, not {sources}")
        if not sources:
            raise ConfigError("nothing to compile: set model, checkpoint or onnx")
        get_board(self.board)  # raises with the list of valid boards
        if not 0 < self.resource_budget <= 1:
            raise ConfigError(f"resource_budget must be in (0, 1], got {self.resource_budget}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ConfigError(f"target_fps must be > 0, got {self.target_fps}")
        if self.mem_mode not in MEM_MODES:
            raise ConfigError(f"mem_mode must be one of {', '.join(MEM_MODES)}, "
                              f"got {self.mem_mode!r}")
        if self.fifo_sizing not in FIFO_SIZINGS:
            raise ConfigError(f"fifo_sizing must be one of {', '.join(FIFO_SIZINGS)}, "
                              f"got {self.fifo_sizing!r}")
        if self.min_fifo_depth < 2:
            raise ConfigError(f"min_fifo_depth must be at least 2, got {self.min_fifo_depth}")
        if self.binary_mvau not in BINARY_MVAU_BACKENDS:
            raise ConfigError(f"binary_mvau must be one of {', '.join(BINARY_MVAU_BACKENDS)}, "
                              f"got {self.binary_mvau!r}")
        if self.impl_style not in IMPL_STYLES:
            raise ConfigError(f"impl_style must be one of {', '.join(IMPL_STYLES)}, "
                              f"got {self.impl_style!r}")
        if self.clk_mhz is not None and not 10 <= self.clk_mhz <= 800:
            raise ConfigError(f"clk_mhz must be in [10, 800], got {self.clk_mhz}")

    @property
    def board_info(self) -> Board:
        return get_board(self.board)

    @property
    def clock_mhz(self) -> float:
        return float(self.clk_mhz or self.board_info.default_clk_mhz)

    @property
    def name(self) -> str:
        if self.model:
            return self.model
        return (self.checkpoint or self.onnx).stem

    @property
    def out_dir(self) -> Path:
        return self.output_dir or Path("build") / f"{self.name}_{self.board_info.name}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
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
        valid = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(data) - set(valid))
        if bad:
            raise ConfigError(f"unknown flow config field(s) {bad}; valid: {', '.join(valid)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"invalid flow config: {e}") from None
