"""Fixtures every test can use.

- `repo_root`, `shared_dir` (skips when ../shared is absent), `template` (template.yaml, long-form intrinsics);
- `free_port()` -> an unused TCP port on 127.0.0.1;
- every test's CLI state file (EVERGREEN_LOCAL_STATE) is its own, never the checkout's `.local-stack/env.json`;
- `aws_credentials`: dummy credentials and region in the environment (explicit, not autouse);
- `moto_server`: one moto server per session, its endpoint URL (http://127.0.0.1:<port>);
- `local_resources`: the template's table, queues, secrets and bucket provisioned on `moto_server` under a
  prefix unique to the test (so tests never see each other's data);
- `local_stack`: the whole local stack (HTTP API, SegmentSync poller, sandbox) on free ports, one per test module.

In-process moto gets the local stack's patches too (evergreen_cli.local_stack.moto_server.apply_patches): a
TransactWriteItems backs up only the items it names and a Query reads only its partition, instead of copying or
sorting the whole table each time, so a test's cost follows what it writes, not what earlier tests left.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported inside the fixtures, so a broken module fails only the tests that use it
    from evergreen_cli.local_stack.resources import LocalResources
    from evergreen_cli.local_stack.stack import LocalStack, LocalStackOptions

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    from evergreen_cli.local_stack.moto_server import apply_patches  # noqa: PLC0415 - moto is a dev dependency

    apply_patches()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def no_local_stack_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's state file is the test's own (absent unless the test writes it), never the checkout's
    .local-stack/env.json: tests run beside `make run` and beside each other."""
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(tmp_path_factory.mktemp("state") / "env.json"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir(repo_root: Path) -> Path:
    """<repo>/../shared, the read-only references; skips the test where it is absent."""
    shared = repo_root.parent / "shared"
    if not shared.is_dir():
        pytest.skip(f"../shared is absent (user clone): {shared} holds the reference payloads and specs")
    return shared


@pytest.fixture(scope="session")
def template(repo_root: Path) -> dict[str, Any]:
    from evergreen_cli.local_stack.template import load_template  # noqa: PLC0415

    return load_template(repo_root / "template.yaml")


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return _free_port


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and us-east-1, so boto3 never reaches for real ones."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on a free port for the whole session (DynamoDB writes atomic); yields its endpoint URL."""
    from evergreen_cli.local_stack.moto_server import MotoServer  # noqa: PLC0415 - only tests that need it pay for the import

    server = MotoServer("127.0.0.1", 0).start()
    yield server.url
    server.stop()


@pytest.fixture
def local_resources(template: dict[str, Any], moto_server: str) -> LocalResources:
    """The template's resources on moto server, under a prefix unique to this test, with the default local secrets."""
    from evergreen_cli.local_stack.resources import LocalSecrets, provision  # noqa: PLC0415

    prefix = f"t{uuid.uuid4().hex[:12]}"
    return provision(template, moto_server, region="us-east-1", prefix=prefix, local_secrets=LocalSecrets())


@pytest.fixture(scope="module")
def local_stack(moto_server: str) -> Iterator[LocalStack]:
    """The local stack on free ports with the Klaviyo sandbox (never the real Klaviyo) and no sweep timer.

    One per test module; its functions' environment is in os.environ while it runs. Call `local_stack.drain()`
    to deliver every queued segment change to SegmentSync now, `local_stack.run_sweep()` to sweep.
    """
    from evergreen_cli.local_stack.stack import LocalStack  # noqa: PLC0415

    stack = LocalStack(local_stack_options(moto_server, "e2e")).start()
    yield stack
    stack.stop()


def local_stack_options(moto_server: str, prefix: str, *, poll: bool = True) -> LocalStackOptions:
    """A local stack on free ports over `moto_server`, with the Klaviyo sandbox, no sweep or engagement-poll timer
    and no state file; with `poll=False` no poller runs either (the test hands queued messages over itself:
    `LocalStack.drain`)."""
    from evergreen_cli.local_stack.stack import options_on_free_ports  # noqa: PLC0415

    return options_on_free_ports(
        moto_endpoint=moto_server,
        sweep_every=None,
        engagement_poll_every=None,
        poll=poll,
        prefix=f"{prefix}{uuid.uuid4().hex[:10]}",
        use_sandbox=True,
        environ={},
        state_file=None,
    )
