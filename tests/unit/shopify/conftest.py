"""Makes the current-shape sample bodies (`shopify_samples_2025_10`) importable by these tests.

The suite runs with `--import-mode=importlib`, which does not put test directories on
sys.path; the samples are plain builder functions, not fixtures, so they are imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
