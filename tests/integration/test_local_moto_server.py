"""The local moto server keeps DynamoDB's answers while a transaction backs up only the items it names and a query
reads only its partition."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from evergreen_cli.local_stack.resources import LocalResources


def _item(sk: str, **attributes: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "shop#a.myshopify.com"}, "sk": {"S": sk}, **{k: {"N": str(v)} for k, v in attributes.items()}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = local_resources.table_name
    dynamodb.put_item(TableName=table, Item=_item("customer#1", orders=1))
    dynamodb.put_item(TableName=table, Item=_item("customer#2", orders=5))

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _item("customer#1", orders=2)}},
                {"Put": {"TableName": table, "Item": _item("order#9", orders=1)}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "shop#a.myshopify.com"}, "sk": {"S": "customer#2"}},
                        "UpdateExpression": "SET orders = :six",
                        "ConditionExpression": "orders = :four",
                        "ExpressionAttributeValues": {":six": {"N": "6"}, ":four": {"N": "4"}},
                    }
                },
            ]
        )

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = dynamodb.scan(TableName=table)["Items"]
    held = sorted((item["sk"]["S"], item["orders"]["N"]) for item in items)
    assert held == [("customer#1", "1"), ("customer#2", "5")]


def test_a_transaction_that_succeeds_writes_every_item(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = local_resources.table_name
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": _item("customer#1", orders=1)}},
            {"Put": {"TableName": table, "Item": _item("order#9", orders=1)}},
        ]
    )
    assert len(dynamodb.scan(TableName=table)["Items"]) == 2


def test_queries_on_the_table_and_on_an_index_find_exactly_their_partition(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = local_resources.table_name
    for shop, number, email in (("a", 1, "x@example.com"), ("a", 2, "y@example.com"), ("b", 3, "x@example.com")):
        item = _item(f"customer#{number}", orders=number)
        item |= {"pk": {"S": f"shop#{shop}.myshopify.com"}, "email_pk": {"S": f"{shop}#{email}"}}
        dynamodb.put_item(TableName=table, Item=item)

    in_shop_a = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "shop#a.myshopify.com"}},
    )["Items"]
    assert [item["sk"]["S"] for item in in_shop_a] == ["customer#1", "customer#2"]
    assert (
        dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "shop#c.myshopify.com"}},
        )["Items"]
        == []
    )
    by_email = dynamodb.query(
        TableName=table,
        IndexName="by_email",
        KeyConditionExpression="email_pk = :email",
        ExpressionAttributeValues={":email": {"S": "b#x@example.com"}},
    )["Items"]
    assert [item["sk"]["S"] for item in by_email] == ["customer#3"]
