"""`python -m mmsapi.admin`, the same as `mmsapi-admin`."""

from mmsapi.admin.cli import main

main()
