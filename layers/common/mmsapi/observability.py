"""Powertools Logger, Tracer and Metrics: one instance each for every handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

from mmsapi.settings import get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=get_settings().metrics_namespace)
