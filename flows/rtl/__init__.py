# SPDX-License-Identifier: BSD-3-Clause
"""Project-owned RTL layers for FINN dataflow graphs, in two layers of modules.

* The units: ``unit``, ``xnor_mvau``, ``bipolar_mvau``, ``maxpool``, ``accpool``,
  ``elementwise``, ``streams`` (sources under ``hdl/``, Verilog parameters and wrappers,
  bit-exact numpy models). They import numpy only, never FINN or qonnx, so a unit model can be
  used and tested on its own.
* Their FINN custom ops, ``<unit>_op`` (a FINN HW op with an RTL backend), and
  :func:`flows.rtl.registry.register_custom_ops`, which makes them known to qonnx's
  ``getCustomOp`` in FINN's RTL domain (``flows.names.RTL_DOMAIN``).

``synth`` (Yosys resource counts of the XNOR and bipolar MVAUs) sits above both. This package
init imports nothing, so importing a unit model never pulls FINN in.
"""
