"""`make deploy` checks the AWS region and credentials first, one line each, naming what a make user types
(issue 23, item 5)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from evergreen_cli.main import main


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
