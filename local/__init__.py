"""The docker-free local runtime and the admin/dev CLI (never shipped to Lambda)."""
