"""The adapter interface of benches/cluster.py: one ``System`` per peer
(``sys_*.py``). An adapter only builds command lines and environment; the
code that runs in the workers is in the ``app_*`` modules."""

import os
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))


def script(name: str) -> str:
    """Absolute path of a helper script in this folder."""
    return os.path.join(HERE, name)


class Unsupported(Exception):
    """The system cannot express what the scenario needs (the message says
    why); the benchmark prints it as an error row."""


class System:
    name = ""
    app = ""  # module enqueue.py and register.py import

    def env(self, scenario: str) -> Dict[str, str]:
        """Extra environment for every process of this system in ``scenario``."""
        return {}

    def replica_env(self) -> Dict[str, str]:
        """Extra environment for the processes of a recurring replica."""
        return {}

    def worker(self, py: str, index: int, concurrency: int, scenario: str) -> List[str]:
        """argv of worker process ``index``."""
        raise NotImplementedError

    def replica(self, py: str, index: int, concurrency: int) -> List[List[str]]:
        """argvs of the processes of recurring replica ``index`` (a worker
        plus whatever registers or fires the 50 schedules in it)."""
        raise Unsupported(f"{self.name} has no recurring support in this benchmark")

    def recurring_extra(self, py: str) -> List[List[str]]:
        """argvs of processes the recurring scenario runs once, beside the replicas."""
        return []
