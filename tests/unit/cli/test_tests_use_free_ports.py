"""Tests and benchmarks never take the ports `make run` listens on: a newcomer's `make run` starts while the
suite runs in another checkout (issue 23, item 1)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from evergreen_cli.local_stack.stack import LocalStackOptions, options_on_free_ports

ROOT = Path(__file__).resolve().parents[3]


def test_options_on_free_ports_leave_every_port_to_the_system():
    options = options_on_free_ports(sweep_every=None)

    ports = {item.name for item in dataclasses.fields(LocalStackOptions) if item.name.endswith("port")}
    assert ports >= {"port", "moto_port", "klaviyo_port", "shopify_port"}
    assert {name: getattr(options, name) for name in ports} == dict.fromkeys(ports, 0)
    assert options.sweep_every is None


def _builds_options_by_hand(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "LocalStackOptions"
    ]


def test_no_test_or_benchmark_builds_a_stack_on_the_default_ports():
    offenders = {
        str(path.relative_to(ROOT)): lines
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := _builds_options_by_hand(path))
    }

    assert offenders == {}, "build the stack's options with options_on_free_ports(...)"
