"""A ``Mailer`` Module subclass (test_broker_defects.py, defect 3): same
class name as _mail_a.Mailer, another Python module, another task."""

from taskmanager import Module


class Mailer(Module):
    def send(self, to):
        return {"sent_by": "_mail_b", "to": to}
