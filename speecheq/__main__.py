"""``python -m speecheq``: the command line."""

from speecheq.cli import main

main()
