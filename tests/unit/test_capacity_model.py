"""The capacity model (bench/capacity_model.py) answers as AWS's limits say it must: a key shared by every
order of a shop throttles a flash sale, keys that spread take it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SALE = 10_000 / 60
"""A flash sale of 10,000 orders a minute, in orders a second."""


@pytest.fixture(scope="module")
def model() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "capacity_model.py"
    spec = importlib.util.spec_from_file_location("capacity_model", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity_model"] = module
    spec.loader.exec_module(module)
    return module


def test_one_key_per_shop_throttles_a_flash_sale_and_keys_that_spread_do_not(model):
    spread = model.OrderWrites({"table:profile": 9, "table:order": 4, "by_shop": 1.5, "due": 1}, 5, 2.6, 1.5)
    one_key = model.OrderWrites({"table:shop": 15.5}, 5, 2.6, 1.5)
    limits = model.Limits(due_shards=32)

    assert not model.simulate(spread, SALE, limits).throttled
    assert model.simulate(one_key, SALE, limits).throttled
    assert model.max_orders_per_s(one_key, limits) * 60 < 4_000


def test_a_table_not_warmed_for_the_sale_throttles_it(model):
    writes = model.OrderWrites({"table:profile": 9, "table:order": 4}, 5, 2.6, 1.5)

    assert model.simulate(writes, 400, model.Limits(warm_wru_per_s=4_000)).throttled
    assert not model.simulate(writes, 400, model.Limits(warm_wru_per_s=40_000)).throttled


def test_the_full_re_evaluation_is_bound_by_what_is_left_beside_the_sale(model):
    resweep = model.Resweep(profiles=10_000_000, item_bytes=1_300, wru_per_profile=1.25)
    limits = model.Limits()

    quiet, _ = model.resweep_hours(resweep, limits, reserved_wru_per_s=0)
    busy, bounds = model.resweep_hours(resweep, limits, reserved_wru_per_s=39_000)

    assert quiet <= 1
    assert busy > quiet and min(bounds, key=lambda name: bounds[name]) == "table_writes"
