"""``python -m memvault``: the command line."""

from memvault.cli import main

main()
