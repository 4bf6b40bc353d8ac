"""Repeatable performance measurements that print tables."""
