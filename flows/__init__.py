# SPDX-License-Identifier: BSD-3-Clause
"""flows: the FINN compiler flow (finn-plus), its RTL units, simulators and the verifier.

``flows`` depends on ``bnn_brevitas`` and never on ``hw``. Inside it, modules form the layers
of :data:`LAYERS`, bottom to top: a module imports only from its own layer or a lower one, and
there are no import circles. Project imports sit at module level; one inside a function is
allowed only when it is lazy for a reason written next to it (``# lazy: …``: a heavy optional
dependency, the board driver). ``tests/test_layering.py`` enforces all of it on every module.

The layers, bottom to top (generated from :data:`LAYERS`, the one place they are written):
"""

from __future__ import annotations

#: (layer, what it holds, module patterns), bottom to top; patterns are ``fnmatch`` globs
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("base facts", "boards, tools, rtllib patches, domains and build-dir file names, the "
     "stage-result record", ("flows.names", "flows.results", "flows.boards", "flows.tools",
                             "flows.rtllib_patches")),
    ("config", "FlowConfig", ("flows.config",)),
    ("RTL unit models", "the project's RTL units as numpy models and HDL text (no FINN)",
     ("flows.rtl", "flows.rtl.unit", "flows.rtl.xnor_mvau", "flows.rtl.bipolar_mvau",
      "flows.rtl.maxpool", "flows.rtl.accpool", "flows.rtl.elementwise", "flows.rtl.streams")),
    ("FINN ops", "the units as FINN custom ops, and their registration",
     ("flows.rtl.*_op", "flows.rtl.registry")),
    ("FINN environment", "FINN's settings, model loading and the relocatable build "
     "directory", ("flows.finn_env", "flows.build_dir")),
    ("graph rewrites", "qonnx Transformations", ("flows.transforms", "flows.transforms.*")),
    ("analyses and simulators", "folding, FIFOs, estimates, driver metadata, divergence, "
     "per-layer and whole-design RTL simulation, Yosys synthesis, HDL and Tcl checkers",
     ("flows.folding", "flows.fifos", "flows.estimate", "flows.driver_meta", "flows.divergence",
      "flows.rtlsim", "flows.rtlsim_*", "flows.stitch", "flows.rtl.synth", "flows.hdl_scan",
      "flows.tcl_check")),
    ("steps", "step_<verb>(model, cfg) -> model", ("flows.steps", "flows.hw_steps")),
    ("runner", "the step table, resume, fingerprint, CLI", ("flows.pipeline",)),
    ("verify", "bit-exact verification, stage by stage", ("flows.verify",
                                                          "flows.verify_stages")),
    ("Vivado hand-off", "the Vivado dry run: FINN's Vivado-side code up to each tool launch, "
     "its scripts checked", ("flows.vivado_dryrun",)),
)


def _table() -> str:
    lines = [f"{i:2d}. {name} ({', '.join(p.removeprefix('flows.') for p in pats)}): {what}"
             for i, (name, what, pats) in enumerate(LAYERS, 1)]
    return "\n".join(["", *lines, ""])


__doc__ = (__doc__ or "") + _table()
