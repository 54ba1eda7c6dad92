"""Expected mistakes end in one line on stderr naming the fix, and a non-zero exit code; never a traceback."""

from __future__ import annotations

import argparse
import errno
import json
import socket
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from evergreen_cli.main import CliError, busy_ports, friendly_message, main


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(tmp_path / "absent.json"))


def test_a_bad_flag_names_the_commands_help(capsys):
    assert main(["explain", "--shop", "s.myshopify.com", "--email", "a@example.com", "--bogus"]) == 2
    assert "--bogus" in (line := one_line(capsys)) and "evergreen explain --help" in line


def test_a_missing_flag_names_the_flag(capsys):
    assert main(["explain", "--shop", "s.myshopify.com"]) == 2
    assert "--email" in one_line(capsys)


def test_an_unknown_command_lists_the_commands(capsys):
    assert main(["explian"]) == 2
    assert "explain" in one_line(capsys)


def test_a_missing_file_is_named(capsys, tmp_path: Path):
    missing = tmp_path / "nope.json"
    assert main(["send-webhook", str(missing)]) == 1
    assert f"no such file: {missing}" in one_line(capsys)


def test_the_stack_not_running_says_make_run(capsys, no_local_stack):
    assert main(["explain", "--shop", "s.myshopify.com", "--email", "a@example.com"]) == 1
    line = one_line(capsys)
    assert "make run" in line and "--aws" in line


def test_nothing_listening_on_the_http_api_port_says_make_run(capsys, free_port):
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/shopify"
    assert main(["send-webhook", "events/shopify/orders_create.json", "--url", url]) == 1
    line = one_line(capsys)
    assert f"127.0.0.1:{port}" in line and "make run" in line


def test_a_local_stack_that_died_without_cleaning_up_says_make_run(capsys, tmp_path, monkeypatch, free_port):
    port = free_port()
    state = tmp_path / "env.json"
    state.write_text(
        json.dumps(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "PROFILES_TABLE": "gone",
            }
        )
    )
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, "x")  # restored after the test; the command overwrites them from the state

    assert main(["explain", "--shop", "s.myshopify.com", "--email", "a@example.com"]) == 1
    line = one_line(capsys)
    assert f"127.0.0.1:{port}" in line and "make run" in line


def test_no_aws_region_names_the_region_flag(capsys, no_aws_configuration):
    assert main(["explain", "--aws", "--shop", "s.myshopify.com", "--email", "a@example.com"]) == 1
    line = one_line(capsys)
    assert "--region" in line and "AWS_REGION" in line


def test_no_aws_credentials_names_aws_configure(capsys, no_aws_configuration):
    assert (
        main(["explain", "--aws", "--region", "us-east-1", "--shop", "s.myshopify.com", "--email", "a@example.com"])
        == 1
    )
    assert "aws configure" in one_line(capsys)


def test_a_stack_that_does_not_exist_names_the_stack_flag(capsys, aws_credentials):
    with mock_aws():
        assert main(["sweep", "--aws", "--stack", "not-deployed"]) == 1
    line = one_line(capsys)
    assert "'not-deployed'" in line and "--stack" in line and "--region" in line


def test_a_port_in_use_is_named_with_its_flag(free_port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        args = argparse.Namespace(host="127.0.0.1", port=free_port(), moto_port=busy, klaviyo_port=free_port())
        message = friendly_message(OSError(errno.EADDRINUSE, "Address already in use"), args)
    assert message is not None
    assert f"port {busy} is in use" in message and "--moto-port" in message


def start_on_a_busy_port(flag: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`evergreen run` on free ports but `flag`'s, which another socket holds: (that port, the one line said)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        ports = {"--port": "0", "--moto-port": "0", "--klaviyo-port": "0", "--shopify-port": "0", flag: str(busy)}
        assert main(["run", "--no-sweep", *(part for pair in ports.items() for part in pair)]) == 1
    return busy, one_line(capsys)


@pytest.mark.parametrize("flag", ["--port", "--moto-port", "--klaviyo-port", "--shopify-port"])
def test_starting_the_stack_on_a_port_in_use_names_the_port_and_its_flag_before_starting_anything(
    capsys, flag, tmp_path, monkeypatch
):
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(tmp_path / "env.json"))
    busy, line = start_on_a_busy_port(flag, capsys)
    assert f"port {busy} is in use" in line and f"pass {flag} <another port>" in line
    assert not (tmp_path / "env.json").exists()


def test_a_command_error_keeps_its_exit_code():
    assert friendly_message(CliError("fix it like this", 3)) == "fix it like this"


def test_a_bug_is_not_disguised():
    assert friendly_message(ZeroDivisionError("division by zero")) is None


def test_help_describes_the_product(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "Klaviyo segments" in text and "make run" in text
    for command in ("explain", "sweep", "plan", "doctor", "redrive", "shopify-app-toml"):
        assert command in text


def test_a_stack_that_is_not_evergreens_names_the_missing_outputs(capsys, aws_credentials):
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="someone-else",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}},
                }
            ),
        )
        assert (
            main(
                ["explain", "--aws", "--stack", "someone-else", "--shop", "s.myshopify.com", "--email", "a@example.com"]
            )
            == 1
        )
    line = one_line(capsys)
    assert "ProfilesTableName" in line and "--stack" in line


def test_a_port_a_stopped_stack_used_a_moment_ago_is_not_reported_in_use():
    """Restarting `make run` right after Ctrl-C: the old connections linger in TIME_WAIT, yet the port is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first, so its end of the connection waits in TIME_WAIT
            client.recv(1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            pytest.skip("this system keeps no TIME_WAIT binding on the server's port")

    assert busy_ports(argparse.Namespace(host="127.0.0.1", port=port)) == []


@pytest.mark.parametrize("content", [None, "version: 1\nsegments:\n  x:\n    when: {bogus: 1}\n"])
def test_starting_the_stack_with_a_segments_file_that_is_missing_or_invalid_names_it_before_starting_anything(
    capsys, tmp_path, monkeypatch, content
):
    segments = tmp_path / "segments.yaml"
    if content is not None:
        segments.write_text(content)
    monkeypatch.setenv("SEGMENTS_FILE", str(segments))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(tmp_path / "env.json"))

    code = main(["run", "--no-sweep", "--port", "0", "--moto-port", "0", "--klaviyo-port", "0", "--shopify-port", "0"])

    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"evergreen run: SEGMENTS_FILE={segments}: ") and "unset SEGMENTS_FILE" in err
    assert not (tmp_path / "env.json").exists()


@pytest.mark.parametrize(
    ("flag", "variable"),
    [
        ("--port", "PORT"),
        ("--moto-port", "MOTO_PORT"),
        ("--klaviyo-port", "KLAVIYO_PORT"),
        ("--shopify-port", "SHOPIFY_PORT"),
    ],
)
def test_through_make_a_port_in_use_is_moved_with_makes_variable(capsys, flag, variable, monkeypatch):
    monkeypatch.setenv("EVERGREEN_MAKE_TARGET", "run")
    busy, line = start_on_a_busy_port(flag, capsys)
    assert f"port {busy} is in use" in line and f"`make run {variable}=<another port>`" in line


def test_a_mistyped_topic_is_refused_before_anything_is_sent_with_the_topic_it_meant(capsys, free_port):
    url = f"http://127.0.0.1:{free_port()}/webhooks/shopify"  # nothing listens: a request sent would fail otherwise
    code = main(["send-webhook", "events/shopify/orders_create.json", "--topic", "order/create", "--url", url])

    line = one_line(capsys)
    assert code == 2
    assert "'order/create'" in line and "did you mean orders/create?" in line and "--any-topic" in line


def test_any_topic_sends_a_topic_evergreen_does_not_handle(capsys, free_port):
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/shopify"
    code = main(
        ["send-webhook", "events/shopify/orders_create.json", "--topic", "app/uninstalled", "--any-topic", "--url", url]
    )

    assert code == 1 and f"127.0.0.1:{port}" in one_line(capsys), "it went out (and found nothing listening)"


def test_a_mistyped_command_gets_a_did_you_mean(capsys):
    assert main(["backfil"]) == 2
    assert "did you mean backfill?" in one_line(capsys)


@pytest.mark.parametrize(
    ("argv", "meant"),
    [
        (["sweep", "--dryrun"], "--dry-run"),
        (["run", "--shopify-prt", "3201"], "--shopify-port"),
        (["backfill", "--shop", "s.myshopify.com", "--sinse=2024-01-01"], "--since"),
    ],
)
def test_a_mistyped_flag_gets_a_did_you_mean(capsys, argv, meant):
    assert main(argv) == 2
    assert f"did you mean {meant}?" in one_line(capsys)


def test_a_flag_like_nothing_known_gets_no_guess(capsys):
    assert main(["sweep", "--zzzzzz"]) == 2
    assert "did you mean" not in one_line(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["backfill", "--shop", "evergreen-demo"],
        ["register-webhooks", "--shop", "evergreen-demo", "--dry-run"],
        ["explain", "--shop", "evergreen-demo", "--email", "a@example.com"],
        ["seed-shop", "--shop", "evergreen-demo"],
        ["send-webhook", "events/shopify/orders_create.json", "--shop", "evergreen-demo"],
        ["doctor", "--shop", "evergreen-demo"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_shop_name_that_is_not_a_myshopify_domain_is_refused_before_anything_runs(capsys, argv, no_local_stack):
    assert main(argv) == 2
    line = one_line(capsys)
    assert "'evergreen-demo' is not a shop domain" in line and "did you mean evergreen-demo.myshopify.com?" in line


def test_seed_shop_without_a_running_stack_says_so_instead_of_writing_into_whatever_listens(capsys, no_local_stack):
    from evergreen_cli.sandboxes.shopify_admin import start_shopify_sandbox  # noqa: PLC0415

    assert main(["seed-shop", "--customers", "2"]) == 1
    line = one_line(capsys)
    assert "the local stack is not running" in line and "make run" in line

    with start_shopify_sandbox(port=0) as sandbox:  # one sandbox given, the other not: still nothing written
        assert main(["seed-shop", "--customers", "2", "--url", sandbox.url]) == 1
        assert not sandbox.state.loaded and sandbox.state.customers == []
    assert "--klaviyo-url" in one_line(capsys)
