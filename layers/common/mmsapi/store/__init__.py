"""Stores: one class per table or bucket, the only code that calls boto3 for data."""
