"""`python -m local` starts the local runtime, like `make local`."""

from local.runtime import main

main()
