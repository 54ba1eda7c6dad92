"""Puts this directory on sys.path so the tests can import `segment_oracle`.

The suite runs with `--import-mode=importlib`, which does not put test directories on sys.path; the oracle and
its hypothesis strategies are plain functions, not fixtures, so they are imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
