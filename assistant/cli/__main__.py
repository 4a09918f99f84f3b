"""`python -m assistant.cli`: the `moment` command."""

from assistant.cli import main

main()
