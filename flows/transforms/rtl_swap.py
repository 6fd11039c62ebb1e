# SPDX-License-Identifier: BSD-3-Clause
"""The swaps of HLS layers to the project's RTL units (``flows/rtl``) that the flow applies
before code generation, in order. The node surgery they share is ``flows.transforms.rtl_node``."""

from __future__ import annotations

from .accpool import UseAccPoolRTL
from .bipolar_mvau import UseBipolarMvauRTL
from .elementwise import UseElementwiseRTL
from .maxpool import UseMaxPoolRTL
from .streams import UseStreamsRTL
from .xnor_mvau import UseXnorMvauRTL


def rtl_swaps(binary_mvau: bool = True, other_layers: bool = True) -> list:
    """The transformations that move layers to the project's RTL units, in order.
    ``binary_mvau``: the MVAUs with binary weights, XNOR ones (binary activations) and
    bipolar-weight ones (multi-bit activations, add/subtract); ``other_layers``: pools,
    elementwise operations, stream forks and joins."""
    swaps = [UseXnorMvauRTL(), UseBipolarMvauRTL()] if binary_mvau else []
    if other_layers:
        swaps += [UseMaxPoolRTL(), UseAccPoolRTL(), UseElementwiseRTL(), UseStreamsRTL()]
    return swaps
