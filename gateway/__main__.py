"""``python -m gateway demo`` / ``python -m gateway run --token TOKEN`` (see gateway.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
