"""Finish a built layer directory: bytecode compiled ahead, so a cold start compiles nothing.

Lambda extracts a layer to read-only /opt, so Python can never cache the bytecode it compiles there: every cold start
compiles every module it imports from source. This compiles them once, at build time:

- third-party packages ship as sourceless `.pyc` files beside where their `.py` was (the `.py` is removed, which also
  keeps the layer small);
- the evergreen package keeps its `.py` (readable tracebacks) with an `unchecked-hash` `.pyc` in `__pycache__`, which
  Python uses without comparing timestamps (a zip does not keep them exactly);
- static files nothing here serves are removed: the Swagger UI bundle of Powertools' event_handler (1.6 MB;
  Evergreen's handlers do not use event_handler).

    python3.13 build_layer.py <layer>/python
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
from pathlib import Path

OWN_PACKAGE = "evergreen"
PYTHON = (3, 13)
"""Bytecode is specific to a Python version: the layer's runtime, python3.13."""
UNUSED_FILES = (
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui.min.css",
)
"""Data files of dependencies that no code path of Evergreen reads."""


def _drop_caches(root: Path) -> None:
    for cache in [path for path in root.rglob("__pycache__") if path.is_dir()]:
        shutil.rmtree(cache)


def _compile_sourceless(root: Path) -> None:
    """Every third-party `.py` under root becomes a `.pyc` in its place."""
    for source in sorted(root.rglob("*.py")):
        relative = source.relative_to(root)
        if relative.parts[0] == OWN_PACKAGE:
            continue
        py_compile.compile(
            str(source),
            cfile=str(source.with_suffix(".pyc")),
            dfile=str(relative),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        source.unlink()


def finish_layer(root: Path) -> None:
    _drop_caches(root)
    for unused in UNUSED_FILES:
        (root / unused).unlink(missing_ok=True)
    _compile_sourceless(root)
    own = root / OWN_PACKAGE
    if own.is_dir():
        compiled = compileall.compile_dir(
            str(own),
            quiet=1,
            stripdir=str(root),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        if not compiled:
            raise SystemExit(f"could not compile {own}")


def main(argv: list[str]) -> int:
    if sys.version_info[:2] != PYTHON:
        print(f"build_layer.py needs Python {PYTHON[0]}.{PYTHON[1]} (the layer's runtime)", file=sys.stderr)
        return 2
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python3.13 build_layer.py <layer>/python", file=sys.stderr)
        return 2
    finish_layer(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
