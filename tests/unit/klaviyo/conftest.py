"""Fixtures for the Klaviyo unit tests, defined in klaviyo_fakes.py.

The suite runs with `--import-mode=importlib`, which does not put test directories on sys.path, so this
directory is added for the helpers (`from klaviyo_fakes import ...`).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from klaviyo_fakes import change_factory, client, fake_time, klaviyo  # noqa: E402

__all__ = ["change_factory", "client", "fake_time", "klaviyo"]
