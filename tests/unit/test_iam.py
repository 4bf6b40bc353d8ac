"""The IAM evaluator and the call -> (action, resource) table, without any AWS."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws_calls import Access, UnmappedCallError, Where, required_access
from local.iam import Decision, PolicyError, Role, evaluate, managed_policy, parse_document

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
WHERE = Where(callback_state_machines=("arn:aws:states:us-east-1:123456789012:stateMachine:s-ddm",))


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _decide(action: str, resource: str, *statements: dict[str, Any]) -> Decision:
    return evaluate(parse_document(_doc(*statements)), action, resource)


# ---------------------------------------------------------------- the evaluator


def test_an_allow_for_the_action_and_resource_allows() -> None:
    allow = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}
    assert _decide("dynamodb:GetItem", TABLE, allow) is Decision.ALLOW


def test_nothing_allows_by_default() -> None:
    allow = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}
    assert _decide("dynamodb:PutItem", TABLE, allow) is Decision.IMPLICIT_DENY
    assert _decide("dynamodb:GetItem", TABLE + "2", allow) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": TABLE}
    assert _decide("dynamodb:DeleteItem", TABLE, allow, deny) is Decision.EXPLICIT_DENY
    assert _decide("dynamodb:GetItem", TABLE, allow, deny) is Decision.ALLOW


def test_wildcards_in_actions_and_resources() -> None:
    allow = {"Effect": "Allow", "Action": "sqs:SendMessage*", "Resource": "arn:aws:s3:::b/*"}
    assert _decide("sqs:SendMessage", "arn:aws:s3:::b/k/1", allow) is Decision.ALLOW
    assert _decide("sqs:SendMessageBatch", "arn:aws:s3:::b/k", allow) is Decision.ALLOW
    # The bucket itself is not an object of the bucket.
    assert _decide("sqs:SendMessage", "arn:aws:s3:::b", allow) is Decision.IMPLICIT_DENY
    single = {"Effect": "Allow", "Action": "s3:?etObject", "Resource": "*"}
    assert _decide("s3:GetObject", "x", single) is Decision.ALLOW
    assert _decide("s3:GetObjects", "x", single) is Decision.IMPLICIT_DENY


def test_actions_ignore_case_and_resources_do_not() -> None:
    allow = {"Effect": "Allow", "Action": "DynamoDB:getitem", "Resource": TABLE}
    assert _decide("dynamodb:GetItem", TABLE, allow) is Decision.ALLOW
    assert _decide("dynamodb:GetItem", TABLE.upper(), allow) is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_else() -> None:
    allow = {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}
    assert _decide("dynamodb:PutItem", TABLE, allow) is Decision.ALLOW
    assert _decide("s3:PutObject", "arn:aws:s3:::b/k", allow) is Decision.IMPLICIT_DENY


def test_not_resource_denies_everywhere_else() -> None:
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "*", "NotResource": TABLE}
    assert _decide("dynamodb:PutItem", TABLE, allow, deny) is Decision.ALLOW
    assert _decide("dynamodb:PutItem", TABLE + "x", allow, deny) is Decision.EXPLICIT_DENY


def test_an_unknown_condition_never_grants_and_always_refuses() -> None:
    odd = {"SomeFutureOperator": {"aws:SourceVpc": "vpc-1"}}
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": odd}
    assert _decide("s3:GetObject", "x", allow) is Decision.IMPLICIT_DENY
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": odd}
    assert _decide("s3:GetObject", "x", everything, deny) is Decision.EXPLICIT_DENY


def test_known_conditions_are_evaluated_against_the_context() -> None:
    condition = {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    statements = parse_document(
        _doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition})
    )
    assert evaluate(statements, "a:b", "x", {"aws:RequestedRegion": "us-east-1"}).allowed
    assert not evaluate(statements, "a:b", "x", {"aws:RequestedRegion": "eu-west-1"}).allowed
    assert not evaluate(statements, "a:b", "x", {}).allowed  # missing key: no grant


def test_an_unresolved_intrinsic_is_refused_loudly() -> None:
    with pytest.raises(PolicyError):
        parse_document(_doc({"Effect": "Allow", "Action": "*", "Resource": {"Ref": "T"}}))


def test_managed_policies_are_their_documents_and_unknown_ones_are_errors() -> None:
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    sqs = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    role = Role.from_documents("r", managed_arns=[basic, sqs])
    assert role.decide("logs:PutLogEvents", "arn:aws:logs:x").allowed
    assert role.decide("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q").allowed
    # The SQS execution policy lets Lambda poll; it does not let the code send.
    assert not role.decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q").allowed
    assert not role.decide("sqs:ChangeMessageVisibility", "arn:aws:sqs:us-east-1:1:q").allowed
    with pytest.raises(PolicyError, match="no document"):
        managed_policy("arn:aws:iam::aws:policy/AdministratorAccess")


# ---------------------------------------------------------------- the call table


def _accesses(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a.action, a.resource) for a in required_access(service, operation, params, WHERE)]


def test_dynamodb_calls_name_the_table_or_the_index() -> None:
    assert _accesses("dynamodb", "PutItem", {"TableName": "t", "Item": {}}) == [
        ("dynamodb:PutItem", TABLE)
    ]
    assert _accesses("dynamodb", "Query", {"TableName": "t", "IndexName": "by-msg"}) == [
        ("dynamodb:Query", TABLE + "/index/by-msg")
    ]
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {}}},
            {"ConditionCheck": {"TableName": "u", "Key": {}}},
        ]
    }
    assert _accesses("dynamodb", "TransactWriteItems", transact) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:ConditionCheckItem", TABLE[:-1] + "u"),
    ]
    batch: dict[str, Any] = {"RequestItems": {"t": [], "u": []}}
    assert [a for a, _ in _accesses("dynamodb", "BatchWriteItem", batch)] == [
        "dynamodb:BatchWriteItem"
    ] * 2


def test_s3_calls_name_objects_or_the_bucket() -> None:
    obj = "arn:aws:s3:::b/k"
    assert _accesses("s3", "HeadObject", {"Bucket": "b", "Key": "k"}) == [("s3:GetObject", obj)]
    assert _accesses("s3", "ListObjectsV2", {"Bucket": "b"}) == [
        ("s3:ListBucket", "arn:aws:s3:::b")
    ]
    deleted = {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}, {"Key": "l"}]}}
    assert _accesses("s3", "DeleteObjects", deleted) == [
        ("s3:DeleteObject", obj),
        ("s3:DeleteObject", "arn:aws:s3:::b/l"),
    ]
    copy = {"Bucket": "b", "Key": "k", "CopySource": {"Bucket": "a", "Key": "s"}}
    assert _accesses("s3", "CopyObject", copy) == [
        ("s3:GetObject", "arn:aws:s3:::a/s"),
        ("s3:PutObject", obj),
    ]
    assert _accesses("s3", "UploadPart", {"Bucket": "b", "Key": "k"}) == [("s3:PutObject", obj)]
    assert _accesses("s3", "AbortMultipartUpload", {"Bucket": "b", "Key": "k"}) == [
        ("s3:AbortMultipartUpload", obj)
    ]


def test_sqs_calls_name_the_queue_of_the_url() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/mmsapi-send"
    queue = "arn:aws:sqs:us-east-1:123456789012:mmsapi-send"
    assert _accesses("sqs", "SendMessage", {"QueueUrl": url}) == [("sqs:SendMessage", queue)]
    assert _accesses("sqs", "DeleteMessageBatch", {"QueueUrl": url}) == [
        ("sqs:DeleteMessage", queue)
    ]
    assert _accesses("sqs", "ChangeMessageVisibility", {"QueueUrl": url}) == [
        ("sqs:ChangeMessageVisibility", queue)
    ]


def test_put_events_names_each_entrys_bus() -> None:
    entries = {"Entries": [{"EventBusName": "bus"}, {}]}
    assert _accesses("events", "PutEvents", entries) == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/bus"),
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
    ]


def test_step_functions_calls_name_the_state_machine_or_execution() -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:s-encode"
    assert _accesses("stepfunctions", "StartExecution", {"stateMachineArn": machine}) == [
        ("states:StartExecution", machine)
    ]
    execution = "arn:aws:states:us-east-1:123456789012:execution:s-encode:1"
    assert _accesses("stepfunctions", "DescribeExecution", {"executionArn": execution}) == [
        ("states:DescribeExecution", execution)
    ]
    assert _accesses("stepfunctions", "SendTaskSuccess", {"taskToken": "t"}) == [
        ("states:SendTaskSuccess", WHERE.callback_state_machines[0])
    ]


def test_send_text_message_names_the_identity_and_configuration_set() -> None:
    params = {
        "DestinationPhoneNumber": "+14155550100",
        "OriginationIdentity": "pool-abc",
        "ConfigurationSetName": "cs",
        "MessageBody": "hi",
    }
    assert _accesses("pinpoint-sms-voice-v2", "SendTextMessage", params) == [
        ("sms-voice:SendTextMessage", "arn:aws:sms-voice:us-east-1:123456789012:pool/pool-abc"),
        (
            "sms-voice:SendTextMessage",
            "arn:aws:sms-voice:us-east-1:123456789012:configuration-set/cs",
        ),
    ]
    sender = dict(params, OriginationIdentity="MYBRAND")
    del sender["ConfigurationSetName"]
    assert _accesses("pinpoint-sms-voice-v2", "SendTextMessage", sender) == [
        (
            "sms-voice:SendTextMessage",
            "arn:aws:sms-voice:us-east-1:123456789012:sender-id/MYBRAND/US",
        )
    ]


def test_an_operation_without_a_row_fails_loudly() -> None:
    with pytest.raises(UnmappedCallError, match="no IAM row"):
        required_access("dynamodb", "DeleteTable", {"TableName": "t"}, WHERE)


def test_access_is_a_value() -> None:
    assert Access("a:b", "x") == Access("a:b", "x")
