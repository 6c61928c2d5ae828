"""``python -m taskmanager VERB ...``: see ``_cli.py``."""

import sys

from ._cli import main

if __name__ == "__main__":  # not on import (type-stub checkers import every module)
    sys.exit(main())
