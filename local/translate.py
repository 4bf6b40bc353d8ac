"""template.yaml as CloudFormation sees it: translated by the SAM transform, offline.

`sam deploy` packages the code (local paths become S3 locations) and then asks
CloudFormation to run the AWS::Serverless-2016-10-31 transform, which is the
`aws-sam-translator` library. Doing the same here lets the tests and the local
runtime see what AWS sees: the generated roles, the OpenAPI body of the HTTP
API and its references, the event source mappings.

    translated = translate({"CarrierReportToken": "x" * 24})
    translated["Resources"]["ApiFunctionRole"]["Properties"]["Policies"]

PARAMETER_SETS names the deployments the gates check; every one must translate,
lint and order without a cycle.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from local.stack import DEFAULT_REGION, TEMPLATE_PATH, load_template

# The bucket and keys `sam package` would upload to; only their shape matters here.
PACKAGE_BUCKET = "mmsapi-packaged-code"

_TOKEN = "local-carrier-report-token-0000"  # noqa: S105 - a sample, never deployed
_KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"

# Deployments the gates check. Values are what `sam deploy --parameter-overrides` takes.
PARAMETER_SETS: dict[str, dict[str, str]] = {
    "defaults": {"CarrierReportToken": _TOKEN},
    "public-url-and-kms": {
        "CarrierReportToken": _TOKEN,
        "PublicBaseUrl": "https://mms.example.com",
        "MediaBucketKmsKeyArn": _KMS_KEY,
    },
    "sms-configuration-set-and-alarms": {
        "CarrierReportToken": _TOKEN,
        "SmsConfigurationSet": "customer-config-set",
        "AlarmEmail": "ops@example.com",
    },
    "carrier-vpc": {
        "CarrierReportToken": _TOKEN,
        "MmscUrl": "https://10.20.0.15:8443/mm7",
        "CarrierSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        "CarrierSecurityGroupIds": "sg-0123456789abcdef0",
    },
}


class _BundledPolicies:
    """The AWS managed policy ARNs by name, from the list the translator ships (no IAM call)."""

    def load(self) -> dict[str, str]:
        from samtranslator.internal.managed_policies import (  # type: ignore[import-untyped]
            get_bundled_managed_policy_map,
        )

        found: dict[str, str] | None = get_bundled_managed_policy_map("aws")
        if found is None:  # pragma: no cover - the translator always ships the aws partition
            raise RuntimeError("aws-sam-translator ships no managed policy map")
        return found


def packaged(template: Mapping[str, Any], template_dir: Path) -> dict[str, Any]:
    """The template as `sam package` leaves it: code in S3, state machine definitions inline."""
    result = copy.deepcopy(dict(template))
    for logical_id, resource in result["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://{PACKAGE_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::LayerVersion" and "ContentUri" in props:
            props["ContentUri"] = f"s3://{PACKAGE_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            definition = (template_dir / props.pop("DefinitionUri")).read_text(encoding="utf-8")
            props["Definition"] = json.loads(definition)
    return result


def declared_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """Given values over the template's defaults, as CloudFormation would fill them in."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
    unknown = set(given) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"not parameters of the template: {sorted(unknown)}")
    return values


def translate(
    parameters: Mapping[str, str] | None = None, template_path: Path = TEMPLATE_PATH
) -> dict[str, Any]:
    """The CloudFormation template that the SAM transform makes of template.yaml."""
    return copy.deepcopy(_translate(tuple(sorted((parameters or {}).items())), template_path))


@cache
def _translate(parameters: tuple[tuple[str, str], ...], template_path: Path) -> dict[str, Any]:
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]

    template = load_template(template_path)
    # The translator asks boto3 for the region of its pseudo parameters.
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    values = declared_parameters(template, dict(parameters))
    translated: dict[str, Any] = transform(
        packaged(template, template_path.parent), values, _BundledPolicies()
    )
    return translated
