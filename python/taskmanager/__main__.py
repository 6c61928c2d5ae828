"""``python -m taskmanager worker module:manager``: see ``_worker.py``."""

import sys

from ._worker import main

if __name__ == "__main__":  # not on import (type-stub checkers import every module)
    sys.exit(main())
