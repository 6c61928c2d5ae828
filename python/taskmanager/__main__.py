"""``python -m taskmanager worker module:manager``: see ``_worker.py``."""

import sys

from ._worker import main

sys.exit(main())
