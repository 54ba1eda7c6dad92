"""Run every bench/bench_*.py, merge their numbers into bench/results.json and print them.

Each module exposes `run() -> dict[str, object]` with flat dotted keys ("build.layer_mb") whose values are
numbers, or dicts of numbers keyed by topic or function. A module that fails is reported and the others still run.

    uv run python bench/run.py            # all
    uv run python bench/run.py build      # only bench_build.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"


def discover(names: list[str]) -> list[Path]:
    modules = sorted(BENCH_DIR.glob("bench_*.py"))
    if names:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in names}
        modules = [path for path in modules if path.stem.removeprefix("bench_") in wanted]
    return modules


def run_module(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.run()
    if not isinstance(results, dict):
        raise TypeError(f"{path.name}: run() returned {type(results).__name__}, not a dict")
    return results


def merge(results: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Existing keys are kept, keys measured now replace theirs."""
    existing: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    merged = {**existing, **results}
    path.write_text(json.dumps(dict(sorted(merged.items())), indent=2) + "\n", encoding="utf-8")
    return merged


def _format(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    for key, value in sorted(results.items()):
        if isinstance(value, dict):
            rows += [(f"{key}[{sub}]", _format(item)) for sub, item in sorted(value.items())]
        else:
            rows.append((key, _format(value)))
    if not rows:
        return "(no results)"
    width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    return "\n".join(f"{name:<{width}}  {value:>{value_width}}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="bench modules to run (e.g. build engine); default all")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = parser.parse_args(argv)
    measured: dict[str, Any] = {}
    failed: list[str] = []
    for path in discover(args.names):
        started = time.perf_counter()
        print(f"== {path.name}", flush=True)
        try:
            results = run_module(path)
        except Exception:
            failed.append(path.name)
            print(f"FAILED {path.name}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            continue
        measured.update(results)
        print(f"   {len(results)} result(s) in {time.perf_counter() - started:.1f} s", flush=True)
    if measured and not args.no_write:
        merge(measured)
    print()
    print(table(measured))
    if failed:
        print(f"\nfailed: {', '.join(failed)} (results of the others were kept)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
