"""`python -m sfpipe` is the `sfpipe` command."""

from sfpipe.cli import main

main()
