"""Powertools Logger, Tracer and Metrics: one instance each for every handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

from mmsapi.redact import RedactingFormatter
from mmsapi.settings import get_settings

# Every line redacted as a whole: no API key, secret or view token reaches the logs.
logger = Logger(logger_formatter=RedactingFormatter())
tracer = Tracer()
metrics = Metrics(namespace=get_settings().metrics_namespace)
