"""Services: the use cases (save, send, deliver, report, postback) as plain functions."""
