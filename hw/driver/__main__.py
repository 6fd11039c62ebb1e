# SPDX-License-Identifier: BSD-3-Clause
"""``python -m hw.driver`` entry point (see ``cli.py``)."""

import sys

from .cli import main

sys.exit(main())
