"""A recurring-scenario helper process (started by benches/cluster.py):
``python register.py APP_MODULE`` calls ``APP_MODULE.register_recurring()``
(which registers the 50 schedules, or starts a scheduler that blocks), then
stays alive until it is killed."""

import importlib
import sys
import time

if __name__ == "__main__":
    importlib.import_module(sys.argv[1]).register_recurring()
    while True:
        time.sleep(3600)
