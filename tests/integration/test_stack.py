"""local.stack: the resources of template.yaml, created in an emulated AWS (moto)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.stack import (
    TEMPLATE_PATH,
    Stack,
    TemplateError,
    check_order,
    function_logical_ids,
    load_template,
    provision,
)
from mmsapi.settings import settings_from
from mmsapi.store.events import SOURCE
from mmsapi.store.templates import ACCOUNT_INDEX


@pytest.fixture
def emulated_aws() -> Iterator[None]:
    """Given an empty emulated AWS (fake credentials: tests/conftest.py, autouse)."""
    with mock_aws():
        yield


@pytest.fixture
def local_stack(emulated_aws: None) -> Stack:
    """Given an emulated AWS with every resource of template.yaml."""
    return provision("mmsapi-test")


@pytest.fixture
def template() -> dict[str, Any]:
    return load_template()


def _of_type(template: dict[str, Any], kind: str) -> list[str]:
    return [name for name, res in template["Resources"].items() if res["Type"] == kind]


def test_load_template_reads_short_tags_as_long_form(template: dict[str, Any]) -> None:
    # Given template.yaml, written with CloudFormation short tags
    # When it is loaded
    queue = template["Resources"]["PostbackQueue"]["Properties"]
    # Then !GetAtt and !Ref come back in their long form, and dates stay text
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["PostbackDLQ", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "PostbackMaxAttempts"}
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_provision_creates_every_table_with_the_store_keys_and_indexes(
    local_stack: Stack, template: dict[str, Any]
) -> None:
    # Given a provisioned local_stack
    dynamodb = boto3.client("dynamodb")
    # When each table of the template is described
    tables = {
        name: dynamodb.describe_table(TableName=local_stack.physical[name])["Table"]
        for name in _of_type(template, "AWS::DynamoDB::Table")
    }
    # Then all exist, keyed and indexed the way mmsapi.store queries them
    assert set(tables) >= {
        "AccountsTable",
        "TemplatesTable",
        "CountersTable",
        "SendsTable",
        "HandsetsTable",
    }
    for name, table in tables.items():
        declared = template["Resources"][name]["Properties"].get("GlobalSecondaryIndexes", [])
        made = table.get("GlobalSecondaryIndexes", [])
        assert [i["IndexName"] for i in made] == [i["IndexName"] for i in declared]
    accounts, templates = tables["AccountsTable"], tables["TemplatesTable"]
    assert accounts["KeySchema"] == [{"AttributeName": "account_id", "KeyType": "HASH"}]
    assert templates["KeySchema"] == [{"AttributeName": "mms_id", "KeyType": "HASH"}]
    assert {"AttributeName": "mms_id", "AttributeType": "N"} in templates["AttributeDefinitions"]
    indexes = {i["IndexName"]: i for i in templates["GlobalSecondaryIndexes"]}
    by_account = indexes[ACCOUNT_INDEX]
    assert by_account["KeySchema"] == [
        {"AttributeName": "account_id", "KeyType": "HASH"},
        {"AttributeName": "created_key", "KeyType": "RANGE"},
    ]
    assert tables["CountersTable"]["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    for table in tables.values():
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_provision_creates_the_media_bucket(local_stack: Stack) -> None:
    # Given a provisioned local_stack
    bucket = local_stack.physical["MediaBucket"]
    # When the bucket is looked up
    answer = boto3.client("s3").head_bucket(Bucket=bucket)
    # Then it exists, under a name S3 accepts
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert bucket == bucket.lower()
    assert bucket.startswith("mmsapi-test-")


def test_api_function_environment_names_the_created_resources(
    local_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment the template gives ApiFunction
    env = local_stack.function_environment("ApiFunction")
    # Then every resource variable is the local physical name, parameters are their defaults
    assert env["MMS_ACCOUNTS_TABLE"] == local_stack.physical["AccountsTable"]
    assert env["MMS_TEMPLATES_TABLE"] == local_stack.physical["TemplatesTable"]
    assert env["MMS_COUNTERS_TABLE"] == local_stack.physical["CountersTable"]
    assert env["MMS_MEDIA_BUCKET"] == local_stack.physical["MediaBucket"]
    assert env["MMS_OUTBOX_TABLE"] == local_stack.physical["OutboxTable"]
    assert env["MMS_MAX_REQUEST_BYTES"] == "1048576"
    assert env["POWERTOOLS_SERVICE_NAME"] == "mmsapi"
    # When the settings object is built under that environment
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_from(os.environ)
    # Then it reads every one of them
    assert settings.accounts_table == local_stack.physical["AccountsTable"]
    assert settings.templates_table == local_stack.physical["TemplatesTable"]
    assert settings.counters_table == local_stack.physical["CountersTable"]
    assert settings.media_bucket == local_stack.physical["MediaBucket"]
    assert settings.outbox_table == local_stack.physical["OutboxTable"]
    assert settings.max_request_bytes == 1_048_576
    assert settings.fetch_total_timeout == float(env["MMS_FETCH_TOTAL_TIMEOUT"])


def test_postback_function_environment_adds_its_own_variables(local_stack: Stack) -> None:
    # Given the environment the template gives PostbackFunction
    env = local_stack.function_environment("PostbackFunction")
    # Then it has the global variables and its own postback timeout (docs/postbacks.md: 10 s)
    assert env["MMS_ACCOUNTS_TABLE"] == local_stack.physical["AccountsTable"]
    assert env["MMS_POSTBACK_TIMEOUT"] == "10"


def test_function_environment_refuses_what_is_not_a_function(local_stack: Stack) -> None:
    # Given a logical id that is a table, When its function environment is asked for
    # Then that is an error
    with pytest.raises(TemplateError):
        local_stack.function_environment("AccountsTable")


def test_an_event_on_the_bus_arrives_in_the_postback_queue(local_stack: Stack) -> None:
    # Given a provisioned local_stack
    detail = {"code": "N003", "mms-id": 100001}
    # When mmsapi publishes an event on its bus
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": "EncodingFinished",
                "Detail": json.dumps(detail),
                "EventBusName": local_stack.physical["EventBus"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0
    # Then the rule delivers it to the postback queue (moto does deliver EventBridge->SQS)
    messages = boto3.client("sqs").receive_message(
        QueueUrl=local_stack.physical["PostbackQueue"], MaxNumberOfMessages=10
    )["Messages"]
    (message,) = messages
    event = json.loads(message["Body"])
    assert event["source"] == SOURCE
    assert event["detail-type"] == "EncodingFinished"
    assert event["detail"] == detail


def test_an_event_of_another_source_does_not_become_a_postback(local_stack: Stack) -> None:
    # Given a provisioned local_stack
    # When something other than mmsapi publishes on the bus
    boto3.client("events").put_events(
        Entries=[
            {
                "Source": "someone.else",
                "DetailType": "Other",
                "Detail": "{}",
                "EventBusName": local_stack.physical["EventBus"],
            }
        ]
    )
    # Then the postback queue stays empty
    answer = boto3.client("sqs").receive_message(QueueUrl=local_stack.physical["PostbackQueue"])
    assert answer.get("Messages", []) == []


def test_postback_queue_redrives_to_the_dlq_after_the_template_attempts(
    local_stack: Stack, template: dict[str, Any]
) -> None:
    # Given the template's attempt count: 1 delivery + 5 retries (docs/postbacks.md#delivery)
    attempts = int(template["Parameters"]["PostbackMaxAttempts"]["Default"])
    assert attempts == 6
    # When the postback queue's attributes are read
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.physical["PostbackQueue"], AttributeNames=["All"]
    )["Attributes"]
    # Then it hands messages to the DLQ after that many receives, retrying every interval
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == local_stack.arns["PostbackDLQ"]
    assert int(redrive["maxReceiveCount"]) == attempts
    interval = template["Parameters"]["PostbackRetryIntervalSeconds"]["Default"]
    assert attributes["VisibilityTimeout"] == str(interval)


def test_parameters_override_defaults(emulated_aws: None) -> None:
    # Given a deployer's override of the attempt count
    # When the local_stack is provisioned with it
    local_stack = provision("mmsapi-test", parameters={"PostbackMaxAttempts": "3"})
    # Then the queue uses it
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.physical["PostbackQueue"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3


def test_provisioning_twice_keeps_the_same_resources(local_stack: Stack) -> None:
    # Given a provisioned local_stack (a moto server that outlived a restart of the runtime)
    # When it is provisioned again
    again = provision("mmsapi-test")
    # Then nothing fails and every name is the same
    assert again.physical == local_stack.physical
    assert again.arns == local_stack.arns


def test_function_logical_ids_lists_the_handlers(template: dict[str, Any]) -> None:
    # Given template.yaml
    # When its functions are listed
    functions = function_logical_ids()
    # Then every AWS::Serverless::Function is there with its code directory and handler
    assert set(functions) == set(_of_type(template, "AWS::Serverless::Function"))
    api = functions["ApiFunction"]
    assert api.code_uri == TEMPLATE_PATH.parent / "functions" / "api"
    assert (api.module, api.attribute) == ("app", "handler")


def test_state_machines_get_their_definition_with_substitutions(
    emulated_aws: None, tmp_path: Path
) -> None:
    # Given a template with a SAM state machine whose definition names a function
    # (translated as `sam deploy` has it translated: definition inline, substitutions kept)
    (tmp_path / "statemachine").mkdir()
    (tmp_path / "statemachine" / "work.asl.json").write_text(
        '{"Comment": "within ${Timeout} s", "StartAt": "Work", "States": {"Work":'
        ' {"Type": "Task", "Resource": "${WorkArn}", "End": true}}}'
    )
    (tmp_path / "template.yaml").write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n"
        "  WorkTimeout: {Type: Number, Default: 42}\n"
        "Resources:\n"
        "  WorkFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: functions/work/, Handler: app.handler, Runtime: python3.12}\n"
        "  WorkStateMachine:\n"
        "    Type: AWS::Serverless::StateMachine\n"
        "    Properties:\n"
        "      DefinitionUri: statemachine/work.asl.json\n"
        "      DefinitionSubstitutions:\n"
        "        WorkArn: !GetAtt WorkFunction.Arn\n"
        "        Timeout: !Ref WorkTimeout\n"
    )
    # When it is provisioned
    local_stack = provision("sm-test", tmp_path / "template.yaml")
    # Then the state machine exists and its definition has the substitutions resolved
    arn = local_stack.physical["WorkStateMachine"]
    described = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    definition = json.loads(described["definition"])
    task = definition["States"]["Work"]
    assert task["Resource"] == local_stack.arns["WorkFunction"]
    assert task["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:sm-test-WorkFunction"
    assert definition["Comment"] == "within 42 s"


def test_a_loop_between_resources_is_refused_as_cloudformation_refuses_it(
    emulated_aws: None, tmp_path: Path
) -> None:
    # Given a template whose two queues each name the other as their dead-letter queue
    (tmp_path / "template.yaml").write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  FirstQueue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      RedrivePolicy: {deadLetterTargetArn: !GetAtt SecondQueue.Arn, maxReceiveCount: 3}\n"
        "  SecondQueue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      RedrivePolicy: {deadLetterTargetArn: !GetAtt FirstQueue.Arn, maxReceiveCount: 3}\n"
    )
    # When it is provisioned, Then the loop is told, as CloudFormation tells it
    with pytest.raises(TemplateError, match="circular dependency"):
        check_order(provision("loop-test", tmp_path / "template.yaml"))
