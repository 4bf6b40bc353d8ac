"""Powertools Logger, Tracer and Metrics: one instance each for every handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
