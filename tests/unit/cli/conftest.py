"""CLI commands point this process at their target (os.environ, boto3's default session): undo it after each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = dict(os.environ)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    yield
    os.environ.clear()
    os.environ.update(saved)
