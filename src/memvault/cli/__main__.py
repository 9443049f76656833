"""``python -m memvault.cli``: the command line (as ``python -m memvault``)."""

from memvault.cli import main

main()
