"""The IAM gate: calls checked against the caller's translated role, parameters checked
as AWS validates them, and index reads that lag behind writes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.aws_calls import UnmappedCallError
from local.aws_gate import AwsGate, acting_as
from local.stack import Stack
from local.translate import PARAMETER_SETS, translate
from mmsapi.services.view import render_view


def _client(service: str) -> Any:
    return boto3.session.Session().client(service, region_name="us-east-1")  # type: ignore[call-overload]


def _template_item(mms_id: int, account: str = "acct-1") -> dict[str, Any]:
    return {
        "mms_id": {"N": str(mms_id)},
        "account_id": {"S": account},
        "created_key": {"S": f"2026-01-01T00:00:00#{mms_id}"},
    }


def test_a_call_the_role_lacks_is_refused_as_aws_refuses_it(
    stack: Stack, iam_gate: AwsGate
) -> None:
    # Given the ViewFunction, whose role only reads the templates table
    table = stack.physical["TemplatesTable"]
    # When it writes an item there
    with acting_as("ViewFunction"), pytest.raises(ClientError) as refused:
        _client("dynamodb").put_item(TableName=table, Item=_template_item(1))
    # Then AWS's own error comes back, naming the role session, action and table
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "assumed-role/mmsapi-test-ViewFunctionRole/" in error["Message"]
    assert f"dynamodb:PutItem on resource: {stack.arns['TemplatesTable']}" in error["Message"]
    # And the gate holds it against the test (taken here: this one is expected)
    denials = iam_gate.take_denials()
    assert [(d.function, d.refused[0].action) for d in denials] == [
        ("ViewFunction", "dynamodb:PutItem")
    ]
    assert iam_gate.problems() == []
    # And nothing was written
    assert "Item" not in _client("dynamodb").get_item(TableName=table, Key={"mms_id": {"N": "1"}})


def test_removing_one_grant_from_the_template_is_caught(stack: Stack, iam_gate: AwsGate) -> None:
    # Given a copy of the translated template without ApiFunction's grant on the send queue
    template = translate(PARAMETER_SETS["defaults"])
    role = template["Resources"]["ApiFunctionRole"]["Properties"]
    kept = [p for p in role["Policies"] if "sqs:SendMessage" not in str(p)]
    assert len(kept) == len(role["Policies"]) - 1
    role["Policies"] = kept
    stricter = AwsGate.for_stack(stack, template)
    stricter.install()
    try:
        # When the ApiFunction queues a send
        with acting_as("ApiFunction"), pytest.raises(ClientError) as refused:
            _client("sqs").send_message(QueueUrl=stack.physical["SendQueue"], MessageBody="{}")
    finally:
        iam_gate.install()
    # Then SQS's AccessDenied comes back, and the gate recorded it
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert [d.refused[0].action for d in stricter.denials] == ["sqs:SendMessage"]
    # While the template as it is grants it
    with acting_as("ApiFunction"):
        _client("sqs").send_message(QueueUrl=stack.physical["SendQueue"], MessageBody="{}")


def test_a_presigned_url_the_role_could_not_use_is_refused(stack: Stack, iam_gate: AwsGate) -> None:
    bucket = stack.physical["MediaBucket"]
    with acting_as("ViewFunction"):
        # Reading is the ViewFunction's: the URL is made
        url = _client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "templates/acct-1/1/1.jpg"}
        )
        assert bucket in url
        # Writing is not: AWS would refuse the URL's use, the gate refuses to make it
        with pytest.raises(ClientError) as refused:
            _client("s3").generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": "templates/acct-1/1/1.jpg"}
            )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    denials = iam_gate.take_denials()
    assert [(d.presigned, d.refused[0].action) for d in denials] == [(True, "s3:PutObject")]


def test_calls_are_attributed_from_the_call_stack_and_across_threads(
    stack: Stack, iam_gate: AwsGate
) -> None:
    # When the view service runs (the ViewFunction's entry point), outside any acting_as
    page = render_view(_context(), "12345.not-the-secret")
    assert page.status == 404
    # Then its reads are the ViewFunction's
    assert {c.function for c in iam_gate.calls if c.service == "dynamodb"} == {"ViewFunction"}
    # And a worker thread started by a function works for that function
    with acting_as("FinalizeFunction"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_client("s3").list_objects_v2, Bucket=stack.physical["MediaBucket"]).result()
    assert iam_gate.calls[-1].function == "FinalizeFunction"
    assert iam_gate.calls[-1].actions == ("s3:ListBucket",)
    # And the harness's own calls are counted, not checked
    _client("dynamodb").describe_table(TableName=stack.physical["TemplatesTable"])
    assert iam_gate.calls[-1].function == "harness"
    summary = iam_gate.summary()
    assert summary["ViewFunction"] >= 1
    assert summary["FinalizeFunction"] == 1
    assert summary["harness"] >= 1


def test_a_call_without_an_iam_row_fails_loudly(stack: Stack, iam_gate: AwsGate) -> None:
    with acting_as("ApiFunction"), pytest.raises(UnmappedCallError, match="no IAM row"):
        _client("dynamodb").describe_time_to_live(TableName=stack.physical["TemplatesTable"])
    assert len(iam_gate.unmapped) == 1
    iam_gate.unmapped.clear()


def test_parameters_are_validated_as_aws_validates_them(stack: Stack) -> None:
    # An SMS body over End User Messaging's 1600 characters (botocore checks only min)
    with pytest.raises(ClientError) as too_long:
        _client("pinpoint-sms-voice-v2").send_text_message(
            DestinationPhoneNumber="+14155550100", MessageBody="x" * 1601
        )
    error = too_long.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "MessageBody" in error["Message"]
    assert "less than or equal to 1600" in error["Message"]
    # A value outside an enum
    with pytest.raises(ClientError) as not_in_enum:
        _client("dynamodb").put_item(
            TableName=stack.physical["TemplatesTable"],
            Item=_template_item(2),
            ReturnValues="EVERYTHING",
        )
    assert not_in_enum.value.response["Error"]["Code"] == "ValidationException"
    assert "enum value set" in not_in_enum.value.response["Error"]["Message"]


@pytest.mark.gsi_lag(0.4)
def test_an_index_lags_behind_writes(stack: Stack) -> None:
    # Given a template just written
    dynamodb = _client("dynamodb")
    table = stack.physical["TemplatesTable"]
    dynamodb.put_item(TableName=table, Item=_template_item(3))
    query = {
        "TableName": table,
        "IndexName": "by-account",
        "KeyConditionExpression": "account_id = :a",
        "ExpressionAttributeValues": {":a": {"S": "acct-1"}},
    }
    # Then the index does not have it yet, while the table does
    assert dynamodb.query(**query)["Items"] == []
    key = {"mms_id": {"N": "3"}}
    assert "Item" in dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
    # And once the lag has passed, the index has it too
    time.sleep(0.5)
    assert [item["mms_id"]["N"] for item in dynamodb.query(**query)["Items"]] == ["3"]


def _context() -> Any:
    from mmsapi.services.context import context

    return context()
