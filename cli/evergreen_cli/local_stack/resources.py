"""Create the template's table, queues, secrets and bucket on a moto server, from the template's own definitions."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from evergreen_cli.local_stack.template import functions, parameter_defaults, resources

DEFAULT_LOCAL_SHOPIFY_SECRET = "evergreen-local-shopify-secret"  # noqa: S105 - a documented local-only default
"""Signs local Shopify webhooks unless EVERGREEN_LOCAL_SHOPIFY_SECRET says otherwise."""
DEFAULT_LOCAL_KLAVIYO_SECRET = "evergreen-local-klaviyo-secret"  # noqa: S105 - a documented local-only default
"""Signs local Klaviyo webhooks unless EVERGREEN_LOCAL_KLAVIYO_SECRET says otherwise."""
SANDBOX_API_KEY = "sandbox-key"
"""The Klaviyo API key stored locally when KLAVIYO_API_KEY is unset (the sandbox accepts any key)."""
LOCAL_ACCOUNT_ID = "123456789012"
"""moto's default account id."""

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type
BUCKET = "AWS::S3::Bucket"

_CFN_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)


LOCAL_POLL_SHOPS = "evergreen-demo.myshopify.com"
"""The shops the local engagement poll reads Klaviyo for (the local Klaviyo secret has only the `"*"` account)."""


@dataclass(frozen=True)
class LocalSecrets:
    """The values the local secrets hold (never the deployed ones)."""

    shopify_webhook_secret: str = DEFAULT_LOCAL_SHOPIFY_SECRET
    klaviyo_webhook_secret: str = DEFAULT_LOCAL_KLAVIYO_SECRET
    klaviyo_api_key: str = SANDBOX_API_KEY

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalSecrets:
        """EVERGREEN_LOCAL_SHOPIFY_SECRET, EVERGREEN_LOCAL_KLAVIYO_SECRET and KLAVIYO_API_KEY, else the defaults."""
        env = os.environ if environ is None else environ
        return cls(
            shopify_webhook_secret=env.get("EVERGREEN_LOCAL_SHOPIFY_SECRET") or DEFAULT_LOCAL_SHOPIFY_SECRET,
            klaviyo_webhook_secret=env.get("EVERGREEN_LOCAL_KLAVIYO_SECRET") or DEFAULT_LOCAL_KLAVIYO_SECRET,
            klaviyo_api_key=env.get("KLAVIYO_API_KEY") or SANDBOX_API_KEY,
        )

    def secret_string(self, logical_id: str) -> str:
        """What the secret of that logical id holds locally, in the format its Description documents."""
        if logical_id == "ShopifyWebhookSecrets":
            return json.dumps({"*": self.shopify_webhook_secret})
        if logical_id == "KlaviyoSecrets":
            return json.dumps({"*": {"api_key": self.klaviyo_api_key, "webhook_secret": self.klaviyo_webhook_secret}})
        return "{}"


@dataclass(frozen=True)
class Physical:
    """What Ref and Fn::GetAtt return for one provisioned resource."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalResources:
    """The provisioned resources, and each function's environment pointing at them."""

    template: Mapping[str, Any]
    endpoint_url: str
    region: str
    prefix: str
    local_secrets: LocalSecrets
    klaviyo_base_url: str
    physical: Mapping[str, Physical]
    parameters: Mapping[str, str]

    # -- the resources Evergreen uses, by their template logical ids
    @property
    def table_name(self) -> str:
        return self.ref("ProfilesTable")

    @property
    def queue_url(self) -> str:
        return self.ref("SegmentChangesQueue")

    @property
    def dlq_url(self) -> str:
        return self.ref("SegmentChangesDLQ")

    @property
    def shopify_secrets_id(self) -> str:
        return self.ref("ShopifyWebhookSecrets")

    @property
    def klaviyo_secrets_id(self) -> str:
        return self.ref("KlaviyoSecrets")

    @property
    def exports_bucket(self) -> str:
        return self.ref("ComplianceExportsBucket")

    def ref(self, logical_id: str) -> str:
        """What `!Ref logical_id` means locally (a parameter's default, a resource's physical id)."""
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        pseudo = {
            "AWS::StackName": self.prefix,
            "AWS::Region": self.region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self.physical:
            return self.physical[logical_id].ref
        raise KeyError(f"{logical_id} is neither a parameter nor a provisioned resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.physical[logical_id].attributes[attribute]
        except KeyError:
            raise KeyError(f"no local value for !GetAtt {logical_id}.{attribute}") from None

    def resolve(self, value: Any) -> Any:
        """The value with Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select and Fn::If resolved to local values."""
        return _resolve(value, self)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's template environment (Globals merged) with local values, plus the local AWS settings."""
        spec = functions(self.template)[logical_id]
        environment = {name: str(self.resolve(value)) for name, value in spec.environment.items()}
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": environment.get("POWERTOOLS_METRICS_NAMESPACE", "Evergreen"),
                "KLAVIYO_BASE_URL": self.klaviyo_base_url,
                "ENGAGEMENT_POLL_SHOPS": LOCAL_POLL_SHOPS,
                # No Lambda service here to fan a full re-evaluation out to: the scheduled runs do it in turn.
                "SWEEP_FANOUT_FUNCTION": "",
            }
        )
        environment.pop("AWS_SESSION_TOKEN", None)
        # Locally every function shares one environment, and moto answers far slower than DynamoDB: the
        # Shopify function's answer deadline (short AWS timeouts, a 2 s write budget) would bind the backfill too.
        environment.pop("ANSWER_WITHIN_SECONDS", None)
        return environment

    def function_name(self, logical_id: str) -> str:
        return self.ref(logical_id)

    def client(self, service: str) -> Any:
        """A boto3 client for the moto server."""
        return _client(service, self.endpoint_url, self.region)

    def with_klaviyo_base_url(self, url: str) -> LocalResources:
        return replace(self, klaviyo_base_url=url)


def _client(service: str, endpoint_url: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any key
    )


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def _resolve(value: Any, local: LocalResources) -> Any:
    if isinstance(value, list):
        return [_resolve(item, local) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: _resolve(item, local) for key, item in value.items()}
    ((key, arg),) = value.items()
    if key == "Ref":
        return local.ref(str(arg))
    if key == "Fn::GetAtt":
        resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return local.get_att(str(resource), str(attribute))
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], _resolve(arg[1], local))
        return _SUB_VARIABLE.sub(lambda m: _sub_variable(m.group(1), variables, local), text)
    if key == "Fn::Join":
        separator, items = arg
        return str(separator).join(str(item) for item in _resolve(items, local))
    if key == "Fn::Select":
        index, items = _resolve(arg, local)
        return items[int(index)]
    if key == "Fn::If":
        raise ValueError("Fn::If is not supported in the local stack's environment values")
    return {key: _resolve(arg, local)}


def _sub_variable(name: str, variables: Mapping[str, Any], local: LocalResources) -> str:
    if name in variables:
        return str(variables[name])
    if "." in name and not name.startswith("AWS::"):
        resource, attribute = name.split(".", 1)
        return local.get_att(resource, attribute)
    return local.ref(name)


def _kebab(logical_id: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", logical_id).lower()


def local_name(prefix: str, logical_id: str, type_name: str) -> str:
    """The physical name a template resource gets locally, e.g. evergreen-local-profiles-table."""
    base = f"{prefix}-{_kebab(logical_id)}"
    if type_name == SECRET:
        return f"{prefix}/{_kebab(logical_id)}"
    if type_name == BUCKET:
        return re.sub(r"[^a-z0-9.-]", "-", base.lower())[:63].strip("-.")
    return base


def provision(
    template: Mapping[str, Any],
    endpoint_url: str,
    region: str = "us-east-1",
    prefix: str = "evergreen-local",
    local_secrets: LocalSecrets | None = None,
    klaviyo_base_url: str | None = None,
) -> LocalResources:
    """Create (or find, when re-run) the template's tables, queues, secrets and buckets on the moto server."""
    secrets = local_secrets if local_secrets is not None else LocalSecrets.from_env()
    physical: dict[str, Physical] = {}
    local = LocalResources(
        template=template,
        endpoint_url=endpoint_url,
        region=region,
        prefix=prefix,
        local_secrets=secrets,
        klaviyo_base_url=klaviyo_base_url or "https://a.klaviyo.com",
        physical=physical,
        parameters=parameter_defaults(template),
    )
    for logical_id, resource in resources(template, TABLE).items():
        physical[logical_id] = _provision_table(local, logical_id, resource.get("Properties", {}))
    for logical_id, resource in _queues_in_dependency_order(template):
        physical[logical_id] = _provision_queue(local, logical_id, resource.get("Properties", {}))
    for logical_id in resources(template, SECRET):
        physical[logical_id] = _provision_secret(local, logical_id)
    for logical_id in resources(template, BUCKET):
        physical[logical_id] = _provision_bucket(local, logical_id)
    for logical_id, spec in functions(template).items():
        name = local.resolve(spec.function_name) if spec.function_name else local_name(prefix, logical_id, "")
        arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}"
        physical[logical_id] = Physical(ref=str(name), attributes={"Arn": arn})
    return local


def _provision_table(local: LocalResources, logical_id: str, props: Mapping[str, Any]) -> Physical:
    dynamodb = local.client("dynamodb")
    name = local_name(local.prefix, logical_id, TABLE)
    billing = props.get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = {
            key: int(value) for key, value in props.get("ProvisionedThroughput", throughput).items()
        }
    indexes = []
    for index in props.get("GlobalSecondaryIndexes", []):
        translated = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
        if billing == "PROVISIONED":
            translated["ProvisionedThroughput"] = index.get("ProvisionedThroughput", throughput)
        indexes.append(translated)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if props.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    try:
        description = dynamodb.create_table(**request)["TableDescription"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
        description = dynamodb.describe_table(TableName=name)["Table"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") != "ENABLED":
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    attributes = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return Physical(ref=name, attributes=attributes)


def _queues_in_dependency_order(template: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Dead-letter queues before the queues that redrive into them."""
    queues = resources(template, QUEUE)
    return sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))


def _provision_queue(local: LocalResources, logical_id: str, props: Mapping[str, Any]) -> Physical:
    sqs = local.client("sqs")
    name = local_name(local.prefix, logical_id, QUEUE)
    if props.get("FifoQueue"):
        name += ".fifo"
    attributes = {key: _attribute_string(props[key]) for key in _CFN_QUEUE_ATTRIBUTES if key in props}
    if "RedrivePolicy" in props:
        policy = local.resolve(props["RedrivePolicy"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": policy["deadLetterTargetArn"], "maxReceiveCount": int(policy["maxReceiveCount"])}
        )
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        if attributes:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Physical(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _provision_secret(local: LocalResources, logical_id: str) -> Physical:
    secretsmanager = local.client("secretsmanager")
    name = local_name(local.prefix, logical_id, SECRET)
    value = local.local_secrets.secret_string(logical_id)
    try:
        arn: str = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
        arn = secretsmanager.put_secret_value(SecretId=name, SecretString=value)["ARN"]
    return Physical(ref=arn, attributes={"Id": arn, "Name": name})


def _provision_bucket(local: LocalResources, logical_id: str) -> Physical:
    s3 = local.client("s3")
    name = local_name(local.prefix, logical_id, BUCKET)
    request: dict[str, Any] = {"Bucket": name}
    if local.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": local.region}
    try:
        s3.create_bucket(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    return Physical(
        ref=name,
        attributes={"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"},
    )
