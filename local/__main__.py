"""`python -m local` starts the local runtime, like `make local`;
`python -m local phone ...` sends an MMS from a simulated phone to it (local/phone.py)."""

import sys

if sys.argv[1:2] == ["phone"]:
    from local.phone import main as phone

    sys.exit(phone(sys.argv[2:]))

from local.runtime import main

main()
