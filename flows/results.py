# SPDX-License-Identifier: BSD-3-Clause
"""The result of one verification stage: the record every checker returns and verify reports.

Shared by the simulators (``flows.rtlsim``, ``flows.stitch``) and ``flows.verify``; it sits in
the bottom layer so that a simulator never depends on the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StageResult:
    """What one stage did: its status, how much it compared, and where it diverged."""

    stage: str
    status: str  # "pass" | "fail" | "skipped"
    samples: int = 0
    exact: bool | None = None
    max_abs_diff: float | None = None
    top1_agree: float | None = None
    top1_acc: float | None = None
    seconds: float = 0.0
    note: str = ""
    divergence: dict | None = None
