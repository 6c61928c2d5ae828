"""redis-floor: ``python app_floor.py N`` per worker process (N threads
looping on BRPOP; the enqueuer LPUSHes). Not a scheduler: it is left out of
the recurring scenario."""

from base import System, script, Unsupported


class Floor(System):
    name = "redis-floor"
    app = "app_floor"

    def worker(self, py, index, concurrency, scenario):
        return [py, script("app_floor.py"), str(concurrency)]

    def replica(self, py, index, concurrency):
        raise Unsupported("redis-floor is not a scheduler")


SYSTEMS = [Floor()]
