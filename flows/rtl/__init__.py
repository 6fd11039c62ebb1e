# SPDX-License-Identifier: BSD-3-Clause
"""Project-owned RTL layers for FINN dataflow graphs, and their FINN custom ops."""
