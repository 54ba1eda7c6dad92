"""Makes tests/fakes importable (the suite runs with --import-mode=importlib, which leaves sys.path alone)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
