"""Fixtures for the Klaviyo unit tests, defined in klaviyo_fakes.py."""

from __future__ import annotations

from tests.unit.klaviyo.klaviyo_fakes import change_factory, client, fake_time, klaviyo

__all__ = ["change_factory", "client", "fake_time", "klaviyo"]
