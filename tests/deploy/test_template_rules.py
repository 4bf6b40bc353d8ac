"""Policy rules for the template, checked on what CloudFormation sees.

Each rule reads the template after the SAM transform (local.translate), for every
parameter set of the gates, and answers the offending resources: an empty list
passes. Each rule also has a test that removes what it asks for from a copy of the
translated template and sees the rule name the resource, so a rule that can no
longer fail is noticed.

- every queue that is a dead-letter queue (redrive, function, destination, rule or
  subscription DLQ) has a CloudWatch alarm on it;
- every state machine has an alarm on ExecutionsFailed and on ExecutionsTimedOut;
- every function has an alarm on Errors and on Throttles;
- every alarm notifies an SNS topic of the stack;
- every SQS event source mapping has ScalingConfig.MaximumConcurrency from a parameter;
- every SNS subscription to a Lambda function has a dead-letter queue, and every
  function invoked asynchronously (SNS, EventBridge) has an on-failure destination;
- every EventBridge rule target has a dead-letter queue and a retry policy;
- no topic or queue that a service principal may write to uses an AWS-managed key.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.translate import PARAMETER_SETS, translate

Template = dict[str, Any]
Rule = Callable[[Template], list[str]]

ALARM = "AWS::CloudWatch::Alarm"
QUEUE = "AWS::SQS::Queue"
TOPIC = "AWS::SNS::Topic"
FUNCTION = "AWS::Lambda::Function"
STATE_MACHINE = "AWS::StepFunctions::StateMachine"
# The least MaximumConcurrency an SQS event source accepts.
MIN_SQS_CONCURRENCY = 2


# ---------------------------------------------------------------- reading the template


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for the resources of one type."""
    return {name: res for name, res in template["Resources"].items() if res.get("Type") == kind}


def props(resource: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = resource.get("Properties", {})
    return found


def named(value: Any, attribute: str | None = None) -> str | None:
    """The logical id that a Ref (attribute None) or a GetAtt of `attribute` points at."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if attribute is None and "Ref" in value:
        return str(value["Ref"])
    getatt = value.get("Fn::GetAtt")
    if isinstance(getatt, str):
        getatt = getatt.split(".", 1)
    if isinstance(getatt, list) and len(getatt) == 2 and attribute in (None, getatt[1]):
        return str(getatt[0])
    return None


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of each metric an alarm watches."""
    p = props(alarm)
    if "MetricName" in p:
        dims = {d["Name"]: d["Value"] for d in p.get("Dimensions", [])}
        yield p.get("Namespace", ""), p["MetricName"], dims
    for query in p.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric.get("Namespace", ""), metric["MetricName"], dims


def watched(template: Template, namespace: str, dimension: str) -> set[tuple[str, str]]:
    """(logical id, metric name) pairs that some alarm watches through `dimension`."""
    found: set[tuple[str, str]] = set()
    for alarm in resources(template, ALARM).values():
        for ns, metric, dims in alarm_metrics(alarm):
            if ns == namespace and dimension in dims:
                target = named(dims[dimension], "QueueName") or named(dims[dimension])
                if target:
                    found.add((target, metric))
    return found


def dead_letter_targets(template: Template) -> dict[str, str]:
    """Every ARN value that names a place for failures -> the resource that names it."""
    places: dict[str, str] = {}

    def add(value: Any, where: str) -> None:
        target = named(value, "Arn")
        if target:
            places.setdefault(target, where)

    for name, res in template["Resources"].items():
        p, kind = props(res), res.get("Type")
        if kind == QUEUE:
            add(p.get("RedrivePolicy", {}).get("deadLetterTargetArn"), name)
        elif kind == FUNCTION:
            add(p.get("DeadLetterConfig", {}).get("TargetArn"), name)
        elif kind in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping"):
            add(p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), name)
        elif kind == "AWS::SNS::Subscription":
            add(p.get("RedrivePolicy", {}).get("deadLetterTargetArn"), name)
        elif kind == "AWS::Events::Rule":
            for target in p.get("Targets", []):
                add(target.get("DeadLetterConfig", {}).get("Arn"), name)
    return places


def async_invoked_functions(template: Template) -> dict[str, str]:
    """Functions that a service invokes asynchronously -> the resource that invokes them."""
    functions = resources(template, FUNCTION)
    found: dict[str, str] = {}
    for name, sub in resources(template, "AWS::SNS::Subscription").items():
        endpoint = named(props(sub).get("Endpoint"), "Arn")
        if props(sub).get("Protocol") == "lambda" and endpoint in functions:
            found.setdefault(endpoint, name)
    for name, rule in resources(template, "AWS::Events::Rule").items():
        for target in props(rule).get("Targets", []):
            function = named(target.get("Arn"), "Arn")
            if function in functions:
                found.setdefault(function, name)
    return found


def strings(value: Any) -> Iterator[str]:
    """Every string inside a value (intrinsic functions included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def allows_a_service(policy: dict[str, Any]) -> list[str]:
    """The service principals that a resource policy allows anything."""
    services: list[str] = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        if isinstance(principal, dict):
            services.extend(strings(principal.get("Service", [])))
    return services


# ---------------------------------------------------------------- the rules


def dead_letter_queues_without_alarm(template: Template) -> list[str]:
    queues = resources(template, QUEUE)
    alarmed = {queue for queue, _ in watched(template, "AWS/SQS", "QueueName")}
    return [
        f"{queue} (dead-letter queue of {source}) has no CloudWatch alarm"
        for queue, source in sorted(dead_letter_targets(template).items())
        if queue in queues and queue not in alarmed
    ]


def state_machines_without_failure_alarms(template: Template) -> list[str]:
    alarmed = watched(template, "AWS/States", "StateMachineArn")
    return [
        f"{machine} has no alarm on {metric}"
        for machine in sorted(resources(template, STATE_MACHINE))
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut")
        if (machine, metric) not in alarmed
    ]


def functions_without_error_alarms(template: Template) -> list[str]:
    alarmed = watched(template, "AWS/Lambda", "FunctionName")
    return [
        f"{function} has no alarm on {metric}"
        for function in sorted(resources(template, FUNCTION))
        for metric in ("Errors", "Throttles")
        if (function, metric) not in alarmed
    ]


def alarms_without_topic(template: Template) -> list[str]:
    topics = resources(template, TOPIC)
    offences = []
    for name, alarm in sorted(resources(template, ALARM).items()):
        actions = props(alarm).get("AlarmActions", [])
        if not actions or any(named(action) not in topics for action in actions):
            offences.append(f"{name} does not notify a topic of the stack: {actions!r}")
    return offences


def sqs_sources_without_max_concurrency(template: Template) -> list[str]:
    queues = resources(template, QUEUE)
    parameters = template.get("Parameters", {})
    offences = []
    for name, mapping in sorted(resources(template, "AWS::Lambda::EventSourceMapping").items()):
        p = props(mapping)
        source = p.get("EventSourceArn")
        if named(source, "Arn") not in queues and ":sqs:" not in "".join(strings(source)):
            continue
        limit = p.get("ScalingConfig", {}).get("MaximumConcurrency")
        parameter = named(limit)
        if limit is None:
            offences.append(f"{name}: SQS event source without ScalingConfig.MaximumConcurrency")
        elif parameter not in parameters:
            offences.append(f"{name}: MaximumConcurrency {limit!r} is not a template parameter")
        elif int(parameters[parameter].get("MinValue", 0)) < MIN_SQS_CONCURRENCY:
            offences.append(f"{name}: parameter {parameter} allows less than 2 (AWS refuses it)")
    return offences


def lambda_subscriptions_without_dlq(template: Template) -> list[str]:
    return [
        f"{name}: SNS subscription to a function without RedrivePolicy.deadLetterTargetArn"
        for name, sub in sorted(resources(template, "AWS::SNS::Subscription").items())
        if props(sub).get("Protocol") == "lambda"
        and not props(sub).get("RedrivePolicy", {}).get("deadLetterTargetArn")
    ]


def async_functions_without_failure_destination(template: Template) -> list[str]:
    destined = {
        named(props(config).get("FunctionName"))
        for config in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if props(config).get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    }
    functions = resources(template, FUNCTION)
    return [
        f"{function} (invoked asynchronously by {source}) has neither an EventInvokeConfig "
        "OnFailure destination nor a DeadLetterConfig"
        for function, source in sorted(async_invoked_functions(template).items())
        if function not in destined and not props(functions[function]).get("DeadLetterConfig")
    ]


def rule_targets_without_dlq_or_retry(template: Template) -> list[str]:
    offences = []
    for name, rule in sorted(resources(template, "AWS::Events::Rule").items()):
        for target in props(rule).get("Targets", []):
            missing = [key for key in ("DeadLetterConfig", "RetryPolicy") if not target.get(key)]
            if missing:
                offences.append(f"{name} target {target.get('Id')}: no {' and no '.join(missing)}")
    return offences


def service_writers(template: Template) -> dict[str, dict[str, str]]:
    """Topics and queues that AWS services write to -> {service principal: because of what}."""
    writers: dict[str, dict[str, str]] = {}

    def add(target: str | None, service: str, why: str) -> None:
        if target is not None and target in template["Resources"]:
            writers.setdefault(target, {}).setdefault(service, why)

    for kind, list_key in (
        ("AWS::SNS::TopicPolicy", "Topics"),
        ("AWS::SQS::QueuePolicy", "Queues"),
    ):
        for name, policy in resources(template, kind).items():
            for service in allows_a_service(props(policy).get("PolicyDocument", {})):
                for ref in props(policy).get(list_key, []):
                    add(named(ref), service, name)
    # No policy needed, but the service still encrypts with the topic's key.
    for name, alarm in resources(template, ALARM).items():
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in props(alarm).get(key, []):
                add(named(action), "cloudwatch.amazonaws.com", name)
    return writers


def service_published_with_aws_managed_key(template: Template) -> list[str]:
    offences = []
    for target, services in sorted(service_writers(template).items()):
        key = props(template["Resources"][target]).get("KmsMasterKeyId")
        if any(text.startswith("alias/aws/") for text in strings(key)):
            who = ", ".join(f"{service} ({why})" for service, why in sorted(services.items()))
            offences.append(
                f"{target}: {who} writes to it, but it is encrypted with the AWS-managed key "
                f"{key!r}: use a customer-managed key whose key policy allows the service"
            )
    return offences


# ---------------------------------------------------------------- the landed template


@pytest.fixture(params=sorted(PARAMETER_SETS), scope="module")
def translated(request: pytest.FixtureRequest) -> Template:
    return translate(PARAMETER_SETS[request.param])


def check(rule: Rule, template: Template) -> None:
    offences = rule(template)
    assert not offences, "\n".join(offences)


def test_every_dead_letter_queue_has_an_alarm(translated: Template) -> None:
    check(dead_letter_queues_without_alarm, translated)


def test_every_state_machine_has_failed_and_timed_out_alarms(translated: Template) -> None:
    check(state_machines_without_failure_alarms, translated)


def test_every_function_has_errors_and_throttles_alarms(translated: Template) -> None:
    check(functions_without_error_alarms, translated)


def test_every_alarm_notifies_a_topic_of_the_stack(translated: Template) -> None:
    check(alarms_without_topic, translated)


def test_every_sqs_event_source_has_a_maximum_concurrency_parameter(translated: Template) -> None:
    check(sqs_sources_without_max_concurrency, translated)


def test_every_sns_subscription_to_lambda_has_a_dead_letter_queue(translated: Template) -> None:
    check(lambda_subscriptions_without_dlq, translated)


def test_every_async_invoked_function_has_a_failure_destination(translated: Template) -> None:
    check(async_functions_without_failure_destination, translated)


def test_every_rule_target_has_a_dead_letter_queue_and_retry_policy(translated: Template) -> None:
    check(rule_targets_without_dlq_or_retry, translated)


def test_no_aws_managed_key_on_what_a_service_publishes_to(translated: Template) -> None:
    check(service_published_with_aws_managed_key, translated)


def test_the_dashboard_shows_every_function_queue_and_state_machine(translated: Template) -> None:
    # Given the dashboard's body (a Fn::Sub of JSON)
    [dashboard] = resources(translated, "AWS::CloudWatch::Dashboard").values()
    body = props(dashboard)["DashboardBody"]["Fn::Sub"]
    shown = set(re.findall(r"\$\{([A-Za-z0-9]+)[.}]", body))
    # Then it is JSON once substituted, and names every function, queue and state machine
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert widgets
    expected = set(resources(translated, FUNCTION)) | set(resources(translated, QUEUE))
    expected |= set(resources(translated, STATE_MACHINE))
    assert not expected - shown, f"not on the dashboard: {sorted(expected - shown)}"


def test_the_rules_see_what_they_check() -> None:
    """Guards against a rule that passes because it finds nothing to look at."""
    # Given the default deployment
    template = translate(PARAMETER_SETS["defaults"])
    # Then each rule has material: DLQs, state machines, SQS sources, subscriptions, rules
    assert {"SendDLQ", "PostbackDLQ"} <= set(dead_letter_targets(template))
    assert len(resources(template, STATE_MACHINE)) >= 1
    assert "ReportFunction" in async_invoked_functions(template)
    assert resources(template, "AWS::Events::Rule")
    assert len(resources(template, "AWS::Lambda::EventSourceMapping")) >= 2


# ---------------------------------------------------------------- each rule can fail


@pytest.fixture
def broken() -> Template:
    """A copy of the default translation, to remove things from."""
    return copy.deepcopy(translate(PARAMETER_SETS["defaults"]))


def alarm_on(template: Template, dimension_target: str, metric: str) -> str:
    """The logical id of the alarm watching `metric` of a resource."""
    for name, alarm in resources(template, ALARM).items():
        for _, watched_metric, dims in alarm_metrics(alarm):
            targets = {named(v, "QueueName") or named(v) for v in dims.values()}
            if watched_metric == metric and dimension_target in targets:
                return name
    raise AssertionError(f"no alarm on {metric} of {dimension_target}")


def test_a_dead_letter_queue_without_alarm_is_caught(broken: Template) -> None:
    del broken["Resources"][alarm_on(broken, "SendDLQ", "ApproximateNumberOfMessagesVisible")]
    offences = dead_letter_queues_without_alarm(broken)
    assert offences == ["SendDLQ (dead-letter queue of SendQueue) has no CloudWatch alarm"]


def test_a_state_machine_without_timed_out_alarm_is_caught(broken: Template) -> None:
    del broken["Resources"][alarm_on(broken, "EncodeStateMachine", "ExecutionsTimedOut")]
    assert state_machines_without_failure_alarms(broken) == [
        "EncodeStateMachine has no alarm on ExecutionsTimedOut"
    ]


def test_a_function_without_throttles_alarm_is_caught(broken: Template) -> None:
    del broken["Resources"][alarm_on(broken, "PostbackFunction", "Throttles")]
    assert functions_without_error_alarms(broken) == ["PostbackFunction has no alarm on Throttles"]


def test_an_alarm_without_action_is_caught(broken: Template) -> None:
    name = alarm_on(broken, "SendDLQ", "ApproximateNumberOfMessagesVisible")
    del broken["Resources"][name]["Properties"]["AlarmActions"]
    assert [offence.split()[0] for offence in alarms_without_topic(broken)] == [name]


def test_an_sqs_source_without_maximum_concurrency_is_caught(broken: Template) -> None:
    mappings = resources(broken, "AWS::Lambda::EventSourceMapping")
    # Given one mapping without a limit, and one with a literal instead of a parameter
    del props(mappings["DeliverFunctionSends"])["ScalingConfig"]
    props(mappings["PostbackFunctionPostbacks"])["ScalingConfig"]["MaximumConcurrency"] = 5
    offences = sqs_sources_without_max_concurrency(broken)
    assert [offence.split(":")[0] for offence in offences] == [
        "DeliverFunctionSends",
        "PostbackFunctionPostbacks",
    ]


def test_a_concurrency_parameter_that_allows_one_is_caught(broken: Template) -> None:
    limit = props(resources(broken, "AWS::Lambda::EventSourceMapping")["DeliverFunctionSends"])
    broken["Parameters"][named(limit["ScalingConfig"]["MaximumConcurrency"])]["MinValue"] = 1
    assert "allows less than 2" in "".join(sqs_sources_without_max_concurrency(broken))


def test_an_sns_subscription_without_dead_letter_queue_is_caught(broken: Template) -> None:
    del props(broken["Resources"]["ReportFunctionSmsReceipts"])["RedrivePolicy"]
    offences = lambda_subscriptions_without_dlq(broken)
    assert [offence.split(":")[0] for offence in offences] == ["ReportFunctionSmsReceipts"]


def test_an_async_function_without_failure_destination_is_caught(broken: Template) -> None:
    del broken["Resources"]["ReportFunctionEventInvokeConfig"]
    offences = async_functions_without_failure_destination(broken)
    assert [offence.split()[0] for offence in offences] == ["ReportFunction"]


def test_a_rule_target_without_dlq_or_retry_is_caught(broken: Template) -> None:
    target = props(broken["Resources"]["PostbackRule"])["Targets"][0]
    del target["DeadLetterConfig"]
    assert rule_targets_without_dlq_or_retry(broken) == [
        "PostbackRule target postback-queue: no DeadLetterConfig"
    ]
    del target["RetryPolicy"]
    assert rule_targets_without_dlq_or_retry(broken) == [
        "PostbackRule target postback-queue: no DeadLetterConfig and no RetryPolicy"
    ]


def test_an_aws_managed_key_on_a_service_published_topic_is_caught(broken: Template) -> None:
    # Given the SMS receipts topic as it was: under alias/aws/sns, which End User Messaging
    # cannot use
    props(broken["Resources"]["SmsReceiptsTopic"])["KmsMasterKeyId"] = "alias/aws/sns"
    offences = service_published_with_aws_managed_key(broken)
    assert [offence.split(":")[0] for offence in offences] == ["SmsReceiptsTopic"]
    assert "sms-voice.amazonaws.com" in offences[0]


def test_an_aws_managed_key_on_the_alarm_topic_is_caught(broken: Template) -> None:
    # CloudWatch cannot publish to a topic under alias/aws/sns either
    props(broken["Resources"]["AlarmTopic"])["KmsMasterKeyId"] = "alias/aws/sns"
    offences = service_published_with_aws_managed_key(broken)
    assert [offence.split(":")[0] for offence in offences] == ["AlarmTopic"]
    assert "cloudwatch.amazonaws.com" in offences[0]


def test_an_aws_managed_key_on_a_service_published_queue_is_caught(broken: Template) -> None:
    props(broken["Resources"]["PostbackQueue"])["KmsMasterKeyId"] = "alias/aws/sqs"
    offences = service_published_with_aws_managed_key(broken)
    assert [offence.split(":")[0] for offence in offences] == ["PostbackQueue"]
