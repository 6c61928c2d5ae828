"""Defects of the broker mode (issue 25) that only a broker has, each a test
that failed on main (416a74a) and passes now; each docstring says what
happened there. Managers come from the ``tm`` factory (conftest.py) in
``redis`` mode: one session redis-server, a key prefix per manager unless a
test shares one between two managers (two processes, to Redis)."""

import os
import subprocess
import sys
import uuid

import pytest

from taskmanager import Module, RemoteError

from _util import SOON

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mail_a  # noqa: E402
import _mail_b  # noqa: E402


@pytest.fixture
def mode():
    """Only the broker mode here (overrides conftest's parameter)."""
    return "redis"


class Greeter(Module):
    def greet(self, who):
        return f"hello {who}"


# --- Defect 2: a never-started submitter ----------------------------------


def test_a_manager_never_started_gets_the_result_of_what_it_submitted(tm):
    """On main 416a74a the result listener started with ``start_thread()``:
    a manager that only submits (never started) never heard the result, and
    ``result()`` waited forever."""
    prefix = f"defect2-{uuid.uuid4().hex}"
    submitter = tm(start=False, broker_prefix=prefix)
    worker = tm(broker_prefix=prefix)
    mine = Greeter(task_manager=submitter, max_workers=1)
    Greeter(task_manager=worker, max_workers=1)  # the worker's own instance runs it
    handle = mine.add_task(mine.greet, args=["A"])
    assert handle.result(timeout=10) == "hello A"
    assert mine.stats().completed == 0  # it ran in the other "process"


def test_a_submit_only_manager_gets_the_result_too(tm):
    prefix = f"defect2-{uuid.uuid4().hex}"
    submitter = tm(broker_prefix=prefix, submit_only=True)
    worker = tm(broker_prefix=prefix)
    mine = Greeter(task_manager=submitter, max_workers=1)
    Greeter(task_manager=worker, max_workers=1)
    assert mine.add_task(mine.greet, args=["B"]).result(timeout=10) == "hello B"


# --- Defect 3: module names -----------------------------------------------


def test_two_module_classes_of_one_name_in_two_python_modules_run_their_own_code(tm):
    """On main 416a74a a module's name was its class's ``__name__``: both
    ``Mailer`` classes were ``Mailer``, and every task of either ran one
    class's ``send``."""
    manager = tm()
    a = _mail_a.Mailer(task_manager=manager, max_workers=2)
    b = _mail_b.Mailer(task_manager=manager, max_workers=2)
    handles = [(m, m.add_task(m.send, args=[f"u{i}"])) for i in range(5) for m in (a, b)]
    for module, handle in handles:
        expected = "_mail_a" if module is a else "_mail_b"
        assert handle.result(SOON)["sent_by"] == expected


def test_a_second_instance_of_one_module_class_on_a_broker_manager_is_a_value_error(tm):
    """On main 416a74a the second instance silently replaced the first's
    registrations."""
    manager = tm()
    _mail_a.Mailer(task_manager=manager, max_workers=1)
    with pytest.raises(ValueError, match="_mail_a:Mailer"):
        _mail_a.Mailer(task_manager=manager, max_workers=1)
    # Another class of the same __name__ is another module.
    _mail_b.Mailer(task_manager=manager, max_workers=1)


# --- Defect 4: the rule of what may run by name ---------------------------


def elsewhere(x):
    return ["elsewhere", x]


class Mixin:
    """Not a Module subclass: its methods are not the user's module's."""

    def mixed(self, x):
        return ["mixin", x]


class Base(Module):
    def inherited(self, x):
        return ["inherited", x]


class Rules(Mixin, Base):
    def public(self, x):
        return ["public", x]

    @classmethod
    def klass(cls, x):
        return ["classmethod", x]

    @staticmethod
    def static(x):
        return ["staticmethod", x]

    shell = staticmethod(subprocess.getoutput)

    class Nested:
        def __init__(self, x):
            self.x = x

    def _private(self, x):
        return ["private", x]

    @property
    def prop(self):
        return "a property"

    run = elsewhere


ALLOWED = ["inherited", "klass", "public", "static"]


def test_what_may_run_by_name_for_every_kind_of_attribute(tm, tmp_path):
    """On main 416a74a: a classmethod and a staticmethod of the class body
    were refused ("not registered"), and a method of a mixin that is not a
    Module subclass ran."""
    manager = tm()
    rules = Rules(task_manager=manager, max_workers=2)
    runs = {
        "public": rules.public,
        "classmethod": rules.klass,
        "classmethod from the class": Rules.klass,
        "staticmethod": rules.static,
        "inherited": rules.inherited,
    }
    for what, method in runs.items():
        kind = what.split(" ")[0]
        assert rules.add_task(method, args=[1]).result(SOON) == [kind, 1], what
    pwned = tmp_path / "pwned"
    refused = {
        "staticmethod(subprocess.getoutput)": (rules.shell, [f"touch {pwned}"]),
        "nested class": (rules.Nested, [1]),
        "mixin method": (rules.mixed, [1]),
        "_private": (rules._private, [1]),
        "property": (Rules.prop, []),
        "function assigned from elsewhere": (rules.run, [1]),
        "Module's own method": (rules.stats, []),
    }
    for what, (method, args) in refused.items():
        with pytest.raises(TypeError):
            rules.add_task(method, args=args)
        with pytest.raises(TypeError):
            rules.schedule_task(method, 0.01, args=args)
    # A run after them: nothing refused ran in between.
    assert rules.add_task(rules.public, args=[2]).result(SOON) == ["public", 2]
    assert not pwned.exists()


def test_a_worker_registers_exactly_what_the_rule_allows():
    """On main 416a74a there was no one rule (taskmanager._names): the
    submitter's check and the worker's registry could disagree."""
    from taskmanager import _names

    assert _names.runnable_names(Rules) == ALLOWED
    for name in ["shell", "Nested", "mixed", "_private", "prop", "run", "stats", "add_task", "elsewhere"]:
        assert not _names.runnable(Rules, name), name
    assert _names.runnable_names(Base) == ["inherited"]


def test_a_refused_callback_is_a_type_error_too(tm):
    manager = tm()
    rules = Rules(task_manager=manager, max_workers=1)
    for callback in [rules.mixed, rules.run, rules.Nested, [rules.public, rules.shell]]:
        with pytest.raises(TypeError, match="callback"):
            rules.add_task(rules.public, args=[1], callback=callback)
    handle = rules.add_task(rules.public, args=[1], callback=[rules.klass, rules.static])
    assert handle.result(SOON) == ["public", 1]


def test_a_remote_error_of_a_task_run_by_another_manager(tm):
    """A task that raises in the other "process" reaches a never-started
    submitter as RemoteError (with defect 2, it never reached it)."""
    prefix = f"defect2-{uuid.uuid4().hex}"
    submitter = tm(start=False, broker_prefix=prefix)
    worker = tm(broker_prefix=prefix)
    mine = Rules(task_manager=submitter, max_workers=1)
    Rules(task_manager=worker, max_workers=1)
    handle = mine.add_task(mine.public, kwargs={"y": 1})
    with pytest.raises(RemoteError) as info:
        handle.result(timeout=10)
    assert info.value.kind == "TypeError"
