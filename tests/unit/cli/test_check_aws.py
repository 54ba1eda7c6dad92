"""`make deploy` checks the AWS region and credentials first, one line each, naming what a make user types
(issue 23, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto import mock_aws

from evergreen_cli.main import main


@pytest.fixture
def no_aws_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def only_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_through_make_deploy_no_region_names_makes_region_variable(capsys, no_aws_configuration, monkeypatch):
    monkeypatch.setenv("EVERGREEN_MAKE_TARGET", "deploy")

    assert main(["check-aws"]) == 1
    assert "no AWS region" in (line := only_line(capsys)) and "`make deploy REGION=us-east-1`" in line


def test_from_the_command_line_no_region_names_the_flag(capsys, no_aws_configuration):
    assert main(["check-aws"]) == 1
    assert "pass --region us-east-1" in only_line(capsys)


def test_no_credentials_says_how_to_get_them(capsys, no_aws_configuration, monkeypatch):
    monkeypatch.setenv("EVERGREEN_MAKE_TARGET", "deploy")

    assert main(["check-aws", "--region", "eu-west-1"]) == 1
    assert "no AWS credentials" in (line := only_line(capsys)) and "aws configure" in line


def test_with_a_region_and_credentials_it_names_the_account_and_region(capsys, aws_credentials):
    with mock_aws():
        assert main(["check-aws", "--region", "eu-west-1"]) == 0

    assert capsys.readouterr().out.strip() == "AWS account 123456789012, region eu-west-1"
