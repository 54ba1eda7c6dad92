"""`evergreen plan`, `sweep --now --dry-run` and `redrive` against a running stack's resources on moto server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from evergreen.domain.events import OrderObserved
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.segments import DEFAULT_DEFINITIONS_PATH
from evergreen.service.sweep import SweepRequest
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.main import main

SHOP = "ops.myshopify.com"


@pytest.fixture
def running_stack(stack_environment: dict[str, str]) -> Edges:
    """What `evergreen run` leaves for the other commands, and the edges its functions use."""
    return Edges(Settings.from_env(stack_environment))


def order(customer_id: str, days_ago: int, total: str) -> OrderObserved:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0)
    return OrderObserved(order_id=f"o{customer_id}", customer_id=customer_id, created_at=at, total=Decimal(total))


def add_customer(edges: Edges, customer_id: str, days_ago: int, total: str) -> None:
    event = order(customer_id, days_ago, total)
    edges.writer.write_order(
        Profile(shop=SHOP, customer_id=customer_id),
        event.order_id,
        lambda profile, state: apply_order(profile, state, event),
    )


def table(edges: Edges) -> list[dict]:
    return edges.dynamodb.scan(TableName=edges.settings.profiles_table)["Items"]


def test_a_dry_run_sweep_at_a_later_instant_shows_who_would_turn_lapsed_and_writes_nothing(running_stack, capsys):
    add_customer(running_stack, "1", days_ago=170, total="60.00")  # at_risk; lapsed at 180 days
    add_customer(running_stack, "2", days_ago=10, total="60.00")
    before = table(running_stack)
    capsys.readouterr()

    assert main(["sweep", "--dry-run", "--now", "+30d", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["entered"].get("lapsed") == 1 and report["exited"].get("at_risk") == 1
    assert report["written"] == 0 and "as_of" in report
    assert table(running_stack) == before


def test_a_dry_run_sweep_at_a_later_instant_prints_a_table_of_who_enters_and_leaves_each_segment(running_stack, capsys):
    add_customer(running_stack, "1", days_ago=170, total="60.00")  # at_risk; lapsed at 180 days
    capsys.readouterr()

    assert main(["sweep", "--dry-run", "--now", "+30d"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("as of ") and lines[1].split() == ["segment", "would", "enter", "would", "leave"]
    assert ["at_risk", "0", "1"] in [line.split() for line in lines]
    assert ["lapsed", "1", "0"] in [line.split() for line in lines]
    assert "dry run: nothing written" in lines[-1] and "{" not in "".join(lines)


def test_now_without_dry_run_is_refused(running_stack, capsys):
    assert main(["sweep", "--now", "2027-06-01"]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_a_bad_instant_names_the_accepted_forms(running_stack, capsys):
    assert main(["sweep", "--dry-run", "--now", "next tuesday"]) == 2
    assert "+30d" in capsys.readouterr().err


def test_plan_counts_who_would_enter_and_exit_with_examples_and_writes_nothing(running_stack, capsys, tmp_path):
    add_customer(running_stack, "10", days_ago=5, total="700.00")
    add_customer(running_stack, "11", days_ago=5, total="60.00")
    stricter = tmp_path / "segments.yaml"
    stricter.write_text(DEFAULT_DEFINITIONS_PATH.read_text().replace('"500.00"', '"1000.00"'))
    assert stricter.read_text() != DEFAULT_DEFINITIONS_PATH.read_text()
    before = table(running_stack)
    capsys.readouterr()

    assert main(["plan", str(stricter), "--json"]) == 0

    plan = json.loads(capsys.readouterr().out)
    assert plan["profiles"] == 2
    assert plan["segments"]["big_spender"] == {
        "enter": 0,
        "exit": 1,
        "examples_entering": [],
        "examples_exiting": ["customer#10"],
    }
    assert plan["full_reevaluation"] is True
    assert table(running_stack) == before


def with_list(segment: str, list_id: str, tmp_path: Path) -> Path:
    moved = tmp_path / "segments.yaml"
    text = DEFAULT_DEFINITIONS_PATH.read_text()
    moved.write_text(text.replace(f"  {segment}:\n", f"  {segment}:\n    klaviyo_list_id: {list_id}\n", 1))
    assert moved.read_text() != text
    return moved


def test_plan_of_a_list_move_says_it_reevaluates_nobody_and_counts_the_members_it_moves(
    running_stack, capsys, tmp_path
):
    add_customer(running_stack, "20", days_ago=5, total="60.00")
    add_customer(running_stack, "21", days_ago=50, total="60.00")
    running_stack.sweep.run(SweepRequest())  # the running stack's sweep recorded its lists
    moved = with_list("new", "AbC123", tmp_path)
    before = table(running_stack)
    capsys.readouterr()

    assert main(["plan", str(moved)]) == 0
    out = capsys.readouterr().out
    assert "re-evaluates nobody" in out
    assert "new: Klaviyo list (none) -> AbC123: after deploying, a sweep moves 1 member(s), who join AbC123" in out

    assert main(["plan", str(moved), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["klaviyo_list_moves"] == {"new": {"from": [], "to": "AbC123", "members": 1}}
    assert plan["full_reevaluation"] is False and table(running_stack) == before


def test_plan_before_any_sweep_recorded_the_lists_says_the_first_sweep_moves_nobody(running_stack, capsys, tmp_path):
    moved = with_list("new", "AbC123", tmp_path)
    capsys.readouterr()

    assert main(["plan", str(moved)]) == 0

    out = capsys.readouterr().out
    assert "the first sweep records the deployed file's lists and moves nobody" in out
    assert "AbC123" not in out


def test_plan_of_an_invalid_file_points_at_the_line(running_stack, capsys, tmp_path):
    broken = tmp_path / "segments.yaml"
    broken.write_text("version: 1\nsegments:\n  x:\n    when: {orders_count: {gte: many}}\n")

    assert main(["plan", str(broken)]) == 1

    assert f"{broken}:4:" in capsys.readouterr().err


def test_redrive_with_an_empty_dead_letter_queue_has_nothing_to_do(running_stack, capsys):
    assert main(["redrive"]) == 0
    assert "empty" in capsys.readouterr().out


def dead_letters(local_resources, count: int) -> list[tuple[str, dict]]:
    """`count` segment changes in the dead-letter queue, each with a message attribute; returns (body, attributes)."""
    sent = []
    sqs = local_resources.client("sqs")
    for number in range(count):
        body = json.dumps({"change": number})
        attributes = {"attempt": {"DataType": "Number", "StringValue": str(number + 1)}}
        sqs.send_message(QueueUrl=local_resources.dlq_url, MessageBody=body, MessageAttributes=attributes)
        sent.append((body, attributes))
    return sent


def received(local_resources, queue_url: str) -> list[tuple[str, dict]]:
    sqs = local_resources.client("sqs")
    found = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        found += [(message["Body"], message.get("MessageAttributes", {})) for message in messages]
    return found


def waiting(local_resources, queue_url: str) -> int:
    attributes = local_resources.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_redrive_on_the_local_stack_moves_every_dead_letter_back_with_its_body_and_attributes(
    running_stack, local_resources, capsys
):
    sent = dead_letters(local_resources, 3)

    assert main(["redrive"]) == 0

    out, err = capsys.readouterr()
    assert "moving 3 segment change(s)" in out and "moved 3 message(s)" in out
    assert "3/3 moved (COMPLETED)" in err and "Traceback" not in err
    assert waiting(local_resources, local_resources.dlq_url) == 0
    assert sorted(received(local_resources, local_resources.queue_url), key=str) == sorted(sent, key=str)


def test_a_second_redrive_finds_the_dead_letter_queue_empty(running_stack, local_resources, capsys):
    dead_letters(local_resources, 1)
    assert main(["redrive"]) == 0
    capsys.readouterr()

    assert main(["redrive"]) == 0

    assert "the dead-letter queue is empty: nothing to redrive" in capsys.readouterr().out


def test_redrive_aws_moves_the_deployed_stacks_dead_letters_with_sqs_move_task(running_stack, local_resources, capsys):
    """--aws finds the queues through the stack's outputs; moto server stands in for SQS and CloudFormation."""
    stack = f"deployed-{local_resources.prefix}"
    local_resources.client("cloudformation").create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "ProfilesTableName": {"Value": local_resources.table_name},
                    "SegmentChangesQueueUrl": {"Value": local_resources.queue_url},
                },
            }
        ),
    )
    sent = dead_letters(local_resources, 2)

    assert main(["redrive", "--aws", "--stack", stack, "--region", "us-east-1"]) == 0

    assert "moved 2 message(s)" in capsys.readouterr().out
    assert waiting(local_resources, local_resources.dlq_url) == 0
    assert sorted(received(local_resources, local_resources.queue_url), key=str) == sorted(sent, key=str)
