# SPDX-License-Identifier: BSD-3-Clause
"""Everything a run needs to continue exactly, and the signal handling that saves it.

A training checkpoint is an ordinary ``bnn_brevitas.checkpoint`` file (``load_model`` and
``torch.load(weights_only=True)`` read it) whose ``extra`` holds:

``train_state``
    ``epoch`` (completed epochs), ``step_in_epoch`` (batches done in the interrupted epoch),
    ``global_step``, ``best`` (the selected epoch so far, ``selection.py``), ``optimizer``,
    ``scheduler`` and ``scaler`` state dicts,
    per-rank RNG states, the partial-epoch metric sums, the metric ``history``, and
    ``quant_stats``: the counter, buffer and value of every Brevitas runtime-statistics scale.
    Brevitas' own ``state_dict`` stores a mid-collection scale as if collection had finished,
    so without these a run resumed during the first ``collect_stats_steps`` steps would differ.
``train_config``, ``dataset``, ``quantize``, ``test_top1``
    the run's config (what ``--resume`` continues, ``resume.py``) and what a KD teacher needs;
    ``test_top1`` is None: the test split is evaluated once, for ``best.pt``.

Checkpoints are written atomically (``bnn_brevitas.checkpoint.atomic_save``) after every
epoch and when SIGINT/SIGTERM arrives, so a SIGKILLed run loses at most one epoch.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling
from torch import nn

from ..errors import UserError

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def quant_stats_state(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Counter, buffer and value of every runtime-statistics scale of ``model``."""
    return {name: {"counter": int(m.counter), "buffer": m.buffer.detach().cpu().clone(),
                   "value": m.value.detach().cpu().clone()}
            for name, m in model.named_modules() if isinstance(m, ParameterFromRuntimeStatsScaling)}


def load_quant_stats_state(model: nn.Module, state: dict[str, dict[str, Any]]) -> None:
    """Undo ``load_state_dict``'s end of statistics collection (see the module docstring)."""
    modules = dict(model.named_modules())
    for name, s in state.items():
        m = modules.get(name)
        if not isinstance(m, ParameterFromRuntimeStatsScaling):
            raise KeyError(f"checkpoint has quantizer statistics for {name!r}, the model does not")
        m.counter = s["counter"]
        with torch.no_grad():
            m.buffer.copy_(s["buffer"])
            m.value.copy_(s["value"])


def load_weights(model: nn.Module, state_dict: dict[str, Any], quantize: bool = True) -> None:
    """``load_state_dict``; a ``--no-quantize`` run never calls its activation quantizers, and
    Brevitas leaves the scale of a never-called quantizer out of the state dict."""

    if quantize:
        model.load_state_dict(state_dict)
        return
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    bad = [k for k in missing if not k.endswith(".scaling_impl.value")] + list(unexpected)
    if bad:
        raise UserError(f"checkpoint does not match {type(model).__name__}: {bad[:5]}")


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it after every step and saves a checkpoint.

    A second SIGINT while stopping raises ``KeyboardInterrupt`` (the user insists).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay with the caller
                break
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping after this step and saving a checkpoint",
                    signal.Signals(signum).name)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def exit_code(self) -> int:
        """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or 0)
