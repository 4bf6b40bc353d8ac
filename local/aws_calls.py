"""What IAM checks for each AWS call the project makes: action(s) and resource ARN(s).

    required_access("dynamodb", "PutItem", {"TableName": "t", ...}, where)
    # [Access("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t")]

One row per botocore (service, operation), taken from the Service Authorization
Reference. An operation without a row raises UnmappedCallError: a new call site needs
a row here before its role can be checked. Keep the rows in service order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit


class UnmappedCallError(Exception):
    """A function made an AWS call that has no IAM row here yet."""


@dataclass(frozen=True)
class Access:
    action: str
    resource: str


@dataclass(frozen=True)
class Where:
    """The account and region of the stack, and what the task tokens belong to."""

    region: str = "us-east-1"
    account: str = "123456789012"
    partition: str = "aws"
    # ARNs of the state machines whose tasks wait for a token (SendTask* resources).
    callback_state_machines: tuple[str, ...] = field(default_factory=tuple)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region, account = (self.region, self.account) if regional else ("", "")
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"


Params = Mapping[str, Any]
Rule = Callable[[Params, Where], Iterator[Access]]

# ---------------------------------------------------------------- DynamoDB


def _table(name: str, where: Where) -> str:
    return name if name.startswith("arn:") else where.arn("dynamodb", f"table/{name}")


def _dynamodb_one(action: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        arn = _table(params["TableName"], where)
        if params.get("IndexName"):
            arn = f"{arn}/index/{params['IndexName']}"
        yield Access(f"dynamodb:{action}", arn)

    return rule


def _dynamodb_per_table(action: str, key: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        for table in params[key]:
            yield Access(f"dynamodb:{action}", _table(table, where))

    return rule


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb_transact(params: Params, where: Where) -> Iterator[Access]:
    for item in params["TransactItems"]:
        for kind, request in item.items():
            yield Access(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table(request["TableName"], where))


# ---------------------------------------------------------------- S3


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _s3_object(action: str, *, version_action: str = "") -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        chosen = version_action if version_action and params.get("VersionId") else action
        yield Access(f"s3:{chosen}", _object(params["Bucket"], params["Key"]))
        if params.get("ACL") and action == "PutObject":
            yield Access("s3:PutObjectAcl", _object(params["Bucket"], params["Key"]))
        if params.get("Tagging") and action == "PutObject":
            yield Access("s3:PutObjectTagging", _object(params["Bucket"], params["Key"]))

    return rule


def _s3_bucket(action: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        yield Access(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}")

    return rule


def _copy_source(source: Any) -> str:
    if isinstance(source, Mapping):
        return _object(source["Bucket"], source["Key"])
    text = unquote(str(source)).lstrip("/").split("?versionId=", 1)[0]
    return f"arn:aws:s3:::{text}"


def _s3_copy(params: Params, where: Where) -> Iterator[Access]:
    yield Access("s3:GetObject", _copy_source(params["CopySource"]))
    yield Access("s3:PutObject", _object(params["Bucket"], params["Key"]))


def _s3_delete_objects(params: Params, where: Where) -> Iterator[Access]:
    for entry in params["Delete"]["Objects"]:
        yield Access("s3:DeleteObject", _object(params["Bucket"], entry["Key"]))


# ---------------------------------------------------------------- SQS


def _sqs(action: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        account, name = urlsplit(params["QueueUrl"]).path.strip("/").split("/")[-2:]
        yield Access(f"sqs:{action}", f"arn:{where.partition}:sqs:{where.region}:{account}:{name}")

    return rule


def _sqs_get_queue_url(params: Params, where: Where) -> Iterator[Access]:
    account = params.get("QueueOwnerAWSAccountId") or where.account
    yield Access(
        "sqs:GetQueueUrl",
        f"arn:{where.partition}:sqs:{where.region}:{account}:{params['QueueName']}",
    )


# ---------------------------------------------------------------- DynamoDB Streams


def _stream(action: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        yield Access(f"dynamodb:{action}", str(params["StreamArn"]))

    return rule


def _stream_of_iterator(params: Params, where: Where) -> Iterator[Access]:
    # A shard iterator starts with its stream's ARN ("<stream arn>|1|<opaque>"), on AWS
    # and in moto: IAM checks GetRecords against that stream.
    iterator = str(params["ShardIterator"])
    stream = iterator.split("|", 1)[0] if iterator.startswith("arn:") else ""
    yield Access("dynamodb:GetRecords", stream or where.arn("dynamodb", "table/*/stream/*"))


# ---------------------------------------------------------------- EventBridge


def _events_put(params: Params, where: Where) -> Iterator[Access]:
    buses = {str(entry.get("EventBusName") or "default") for entry in params["Entries"]}
    for bus in sorted(buses):
        arn = bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        yield Access("events:PutEvents", arn)


# ---------------------------------------------------------------- Step Functions


def _states(action: str, key: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        yield Access(f"states:{action}", str(params[key]))

    return rule


def _states_callback(action: str) -> Rule:
    # The token is opaque: AWS authorizes SendTask* against the state machine that
    # issued it (SAM's StepFunctionsCallbackPolicy grants exactly that). Locally the
    # candidates are the stack's state machines with a .waitForTaskToken task.
    def rule(params: Params, where: Where) -> Iterator[Access]:
        if not where.callback_state_machines:
            yield Access(f"states:{action}", "*")
        for arn in where.callback_state_machines:
            yield Access(f"states:{action}", arn)

    return rule


# ---------------------------------------------------------------- End User Messaging SMS


def _sms_identity(identity: str, destination: str, where: Where) -> str:
    if identity.startswith("arn:"):
        return identity
    if identity.startswith("phone-"):
        return where.arn("sms-voice", f"phone-number/{identity}")
    if identity.startswith("pool-"):
        return where.arn("sms-voice", f"pool/{identity}")
    if identity.startswith("+") or identity.isdigit():
        # A number given as such: AWS resolves it to its phone-number id.
        return where.arn("sms-voice", f"phone-number/{identity}")
    return where.arn("sms-voice", f"sender-id/{identity}/{_country(destination)}")


def _country(number: str) -> str:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else "+" + number)
    except phonenumbers.NumberParseException:
        return "ZZ"
    return phonenumbers.region_code_for_number(parsed) or "ZZ"


def _sms_send_text(params: Params, where: Where) -> Iterator[Access]:
    found = False
    if params.get("OriginationIdentity"):
        found = True
        identity = str(params["OriginationIdentity"])
        destination = str(params.get("DestinationPhoneNumber", ""))
        yield Access("sms-voice:SendTextMessage", _sms_identity(identity, destination, where))
    if params.get("ConfigurationSetName"):
        found = True
        name = str(params["ConfigurationSetName"])
        arn = (
            name if name.startswith("arn:") else where.arn("sms-voice", f"configuration-set/{name}")
        )
        yield Access("sms-voice:SendTextMessage", arn)
    if not found:
        yield Access("sms-voice:SendTextMessage", "*")


# ---------------------------------------------------------------- the table


def _star(action: str) -> Rule:
    def rule(params: Params, where: Where) -> Iterator[Access]:
        yield Access(action, "*")

    return rule


def _nothing(params: Params, where: Where) -> Iterator[Access]:
    # Needs no permission (sts:GetCallerIdentity works even under an explicit deny).
    return iter(())


RULES: dict[tuple[str, str], Rule] = {
    # DynamoDB
    ("dynamodb", "GetItem"): _dynamodb_one("GetItem"),
    ("dynamodb", "PutItem"): _dynamodb_one("PutItem"),
    ("dynamodb", "UpdateItem"): _dynamodb_one("UpdateItem"),
    ("dynamodb", "DeleteItem"): _dynamodb_one("DeleteItem"),
    ("dynamodb", "Query"): _dynamodb_one("Query"),
    ("dynamodb", "Scan"): _dynamodb_one("Scan"),
    ("dynamodb", "DescribeTable"): _dynamodb_one("DescribeTable"),
    ("dynamodb", "BatchGetItem"): _dynamodb_per_table("BatchGetItem", "RequestItems"),
    ("dynamodb", "BatchWriteItem"): _dynamodb_per_table("BatchWriteItem", "RequestItems"),
    ("dynamodb", "TransactWriteItems"): _dynamodb_transact,
    ("dynamodb", "TransactGetItems"): _dynamodb_transact,
    # DynamoDB Streams (Lambda reads a stream with the function's role; the actions are
    # dynamodb:*, on the stream ARN, table/<name>/stream/<label>)
    ("dynamodbstreams", "DescribeStream"): _stream("DescribeStream"),
    ("dynamodbstreams", "GetShardIterator"): _stream("GetShardIterator"),
    ("dynamodbstreams", "GetRecords"): _stream_of_iterator,
    ("dynamodbstreams", "ListStreams"): _star("dynamodb:ListStreams"),
    # S3
    ("s3", "GetObject"): _s3_object("GetObject", version_action="GetObjectVersion"),
    ("s3", "HeadObject"): _s3_object("GetObject", version_action="GetObjectVersion"),
    ("s3", "PutObject"): _s3_object("PutObject"),
    ("s3", "DeleteObject"): _s3_object("DeleteObject", version_action="DeleteObjectVersion"),
    ("s3", "DeleteObjects"): _s3_delete_objects,
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "CreateMultipartUpload"): _s3_object("PutObject"),
    ("s3", "UploadPart"): _s3_object("PutObject"),
    ("s3", "CompleteMultipartUpload"): _s3_object("PutObject"),
    ("s3", "AbortMultipartUpload"): _s3_object("AbortMultipartUpload"),
    ("s3", "ListParts"): _s3_object("ListMultipartUploadParts"),
    ("s3", "ListObjectsV2"): _s3_bucket("ListBucket"),
    ("s3", "ListObjects"): _s3_bucket("ListBucket"),
    ("s3", "HeadBucket"): _s3_bucket("ListBucket"),
    ("s3", "ListMultipartUploads"): _s3_bucket("ListBucketMultipartUploads"),
    ("s3", "GetBucketLocation"): _s3_bucket("GetBucketLocation"),
    # SQS (a batch call is authorized by its single-message action)
    ("sqs", "SendMessage"): _sqs("SendMessage"),
    ("sqs", "SendMessageBatch"): _sqs("SendMessage"),
    ("sqs", "ReceiveMessage"): _sqs("ReceiveMessage"),
    ("sqs", "DeleteMessage"): _sqs("DeleteMessage"),
    ("sqs", "DeleteMessageBatch"): _sqs("DeleteMessage"),
    ("sqs", "ChangeMessageVisibility"): _sqs("ChangeMessageVisibility"),
    ("sqs", "ChangeMessageVisibilityBatch"): _sqs("ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"): _sqs("GetQueueAttributes"),
    ("sqs", "PurgeQueue"): _sqs("PurgeQueue"),
    ("sqs", "GetQueueUrl"): _sqs_get_queue_url,
    # EventBridge
    ("events", "PutEvents"): _events_put,
    # Step Functions
    ("stepfunctions", "StartExecution"): _states("StartExecution", "stateMachineArn"),
    ("stepfunctions", "StartSyncExecution"): _states("StartSyncExecution", "stateMachineArn"),
    ("stepfunctions", "DescribeStateMachine"): _states("DescribeStateMachine", "stateMachineArn"),
    ("stepfunctions", "ListExecutions"): _states("ListExecutions", "stateMachineArn"),
    ("stepfunctions", "DescribeExecution"): _states("DescribeExecution", "executionArn"),
    ("stepfunctions", "StopExecution"): _states("StopExecution", "executionArn"),
    ("stepfunctions", "GetExecutionHistory"): _states("GetExecutionHistory", "executionArn"),
    ("stepfunctions", "SendTaskSuccess"): _states_callback("SendTaskSuccess"),
    ("stepfunctions", "SendTaskFailure"): _states_callback("SendTaskFailure"),
    ("stepfunctions", "SendTaskHeartbeat"): _states_callback("SendTaskHeartbeat"),
    # End User Messaging SMS
    ("pinpoint-sms-voice-v2", "SendTextMessage"): _sms_send_text,
    # Credentials, logs, traces
    ("sts", "GetCallerIdentity"): _nothing,
    ("logs", "PutLogEvents"): _star("logs:PutLogEvents"),
    ("logs", "CreateLogStream"): _star("logs:CreateLogStream"),
    ("logs", "CreateLogGroup"): _star("logs:CreateLogGroup"),
    ("xray", "PutTraceSegments"): _star("xray:PutTraceSegments"),
    ("xray", "PutTelemetryRecords"): _star("xray:PutTelemetryRecords"),
    ("xray", "GetSamplingRules"): _star("xray:GetSamplingRules"),
    ("xray", "GetSamplingTargets"): _star("xray:GetSamplingTargets"),
}


def required_access(service: str, operation: str, params: Params, where: Where) -> list[Access]:
    """Every (action, resource) IAM checks for this call; all must be allowed."""
    rule = RULES.get((service, operation))
    if rule is None:
        raise UnmappedCallError(
            f"{service}.{operation} has no IAM row in local/aws_calls.py: add one "
            "(Service Authorization Reference) so that the caller's role can be checked"
        )
    try:
        return list(rule(params, where))
    except (KeyError, TypeError, AttributeError, ValueError):
        # A request without its required parameters: botocore's own validation refuses it.
        return []
