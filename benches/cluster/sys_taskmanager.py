"""taskmanager: ``python -m taskmanager worker app_taskmanager:manager
--concurrency N`` per worker process; the enqueuer's manager is
``submit_only``; every run gets its own ``broker_prefix`` (``BENCH_PREFIX``).
Kill and poison scenarios: ``broker_lease=2`` s (default 30 s), so a dead
worker's tasks are taken over after about 2 s; ``broker_max_deliveries``
stays at its default (3). Recurring: each replica is one process whose
manager is not ``submit_only`` (a worker and a scheduler) and registers the
50 schedules with ``schedule_task(fn, 1, reoccurring=True)``.
``taskmanager-metrics`` (throughput and latency only): the same with the
workers' metrics on."""

from base import System, script


class TaskManagerSystem(System):
    name = "taskmanager"
    app = "app_taskmanager"

    def env(self, scenario):
        return {"BENCH_TM_LEASE": "2"} if scenario in ("cluster-kill", "cluster-poison") else {}

    def worker(self, py, index, concurrency, scenario):
        return [py, "-m", "taskmanager", "worker", "app_taskmanager:manager", "--concurrency", str(concurrency)]

    def replica(self, py, index, concurrency):
        return [[py, script("register.py"), "app_taskmanager"]]

    def replica_env(self):
        return {"BENCH_TM_REPLICA": "1"}


class TaskManagerMetricsSystem(TaskManagerSystem):
    """The same workers with Prometheus metrics on (``--metrics-port 0``:
    every run counted and timed, served on a free port; not scraped during
    the run, as a scrape costs per scrape, not per task): what metrics cost
    a task, against ``taskmanager`` in the same run."""

    name = "taskmanager-metrics"

    def worker(self, py, index, concurrency, scenario):
        return super().worker(py, index, concurrency, scenario) + ["--metrics-port", "0"]


SYSTEMS = [TaskManagerSystem(), TaskManagerMetricsSystem()]
