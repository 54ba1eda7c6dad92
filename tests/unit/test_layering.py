"""Handlers stay thin: a function imports only the composition root, the use cases and event helpers.

The import contracts over the `evergreen` package (pure domain and segments, use cases free of adapters)
are pyproject's [tool.importlinter], run by `lint-imports`. Functions (functions/*/app.py) are not a
package, so this test checks them from their source.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(ROOT.glob("functions/*/app.py"))

ALLOWED_PREFIXES = (
    "evergreen.wiring",
    "evergreen.backfill_wiring",  # the backfill function's part of the composition root
    "evergreen.http_events",
    "evergreen.service",
    "evergreen.observability",  # metrics and the tracer: what a handler reports
    "aws_lambda_powertools",
    "pydantic",  # ValidationError of the event models (the sweep's and the backfill's requests)
)


def _allowed(module: str) -> bool:
    if module.split(".", maxsplit=1)[0] in sys.stdlib_module_names:
        return True
    return any(module == prefix or module.startswith(prefix + ".") for prefix in ALLOWED_PREFIXES)


def imports_of(path: Path) -> set[str]:
    """Every module the file imports, at any depth (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_function_is_checked() -> None:
    assert {path.parent.name for path in FUNCTIONS} >= {
        "shopify_webhook",
        "klaviyo_webhook",
        "staleness_sweep",
        "segment_sync",
        "transition",
        "backfill",
    }


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda path: path.parent.name)
def test_a_function_imports_only_the_root_the_use_cases_and_event_helpers(path: Path) -> None:
    forbidden = sorted(module for module in imports_of(path) if not _allowed(module))
    assert forbidden == [], f"{path.relative_to(ROOT)} builds or reaches past the use cases: {forbidden}"


def test_the_check_catches_a_handler_that_builds_an_adapter(tmp_path: Path) -> None:
    handler = tmp_path / "app.py"
    handler.write_text("import httpx\nfrom evergreen.klaviyo.client import KlaviyoClient\nimport json\n")
    assert sorted(m for m in imports_of(handler) if not _allowed(m)) == ["evergreen.klaviyo.client", "httpx"]
