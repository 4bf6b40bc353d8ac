"""Account administration: the `mmsapi-admin` CLI (cli.py), a production tool.

It uses the stores and validators the API uses, against the local runtime or a
deployed stack (target.py). Every change is validated before it is stored and
counts from the next request: the functions read the account on every request.
"""
