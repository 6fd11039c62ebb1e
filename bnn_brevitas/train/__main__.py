# SPDX-License-Identifier: BSD-3-Clause
"""``python -m bnn_brevitas.train``."""

from .cli import main

raise SystemExit(main())
