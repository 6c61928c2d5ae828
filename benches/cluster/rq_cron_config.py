"""``rq cron`` configuration: the 50 recurring schedules, 1 s each (RQ's
built-in cron scheduler, rq >= 2.5). Each ``rq cron`` process enqueues on its
own timer; RQ does not deduplicate across scheduler processes."""

import common
from app_rq import QUEUE, rec
from rq import cron

for _name in common.SCHEDULE_NAMES:
    cron.register(rec, QUEUE, args=(_name,), interval=1, name=_name)
