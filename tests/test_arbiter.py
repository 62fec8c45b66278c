"""What ecshop changes in gunicorn's master, on a stand-in arbiter: a reload keeps the
old workers until the new ones serve, workers are marked as serving at their first
heartbeat, and WINCH stops the old master's workers only during an upgrade.
(tests/e2e/test_zero_downtime.py runs them in a real gunicorn under load.)"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field

from ecshop._arbiter import keep_serving


@dataclass
class Beat:
    """A worker's heartbeat file: ``last_update()`` as gunicorn's ``WorkerTmp``."""

    at: float = 1.7e9  # the file's creation time, until the worker first beats

    def last_update(self) -> float:
        return self.at


@dataclass
class Worker:
    pid: int
    booted: bool = False
    tmp: Beat = field(default_factory=Beat)


class Arbiter:
    """The steps of gunicorn's arbiter that ecshop relies on, called on ``self`` as
    gunicorn calls them."""

    def __init__(self, workers: int = 2) -> None:
        self.log = logging.getLogger("test.arbiter")
        self.num_workers = workers
        self.WORKERS: dict[int, Worker] = {}
        self.next_pid = 100
        self.killed: list[tuple[int, int]] = []
        self.reexec_pid = 0
        self.winched = 0

    def spawn_worker(self) -> None:
        self.next_pid += 1
        self.WORKERS[self.next_pid] = Worker(self.next_pid)

    def manage_workers(self) -> None:
        while len(self.WORKERS) < self.num_workers:
            self.spawn_worker()
        for pid in sorted(self.WORKERS)[: max(0, len(self.WORKERS) - self.num_workers)]:
            self.kill_worker(pid, signal.SIGTERM)

    def reap_workers(self) -> None:
        pass

    def reload(self) -> None:
        for _ in range(self.num_workers):
            self.spawn_worker()
        self.manage_workers()

    def kill_worker(self, pid: int, sig: int) -> None:
        self.killed.append((pid, sig))

    def kill_workers(self, sig: int) -> None:
        for pid in list(self.WORKERS):
            self.kill_worker(pid, sig)

    def handle_winch(self) -> None:
        self.winched += 1  # gunicorn in the foreground: ignored

    def exit(self, pid: int) -> None:
        del self.WORKERS[pid]
        self.reap_workers()


def beat(arbiter: Arbiter, *pids: int) -> None:
    for pid in pids:
        arbiter.WORKERS[pid].tmp.at = 5000.0 + pid  # gunicorn writes time.monotonic()


def started() -> Arbiter:
    arbiter = Arbiter()
    keep_serving(arbiter)
    arbiter.manage_workers()
    beat(arbiter, 101, 102)
    arbiter.manage_workers()
    return arbiter


def test_a_worker_is_marked_serving_at_its_first_heartbeat(caplog):
    arbiter = Arbiter()
    keep_serving(arbiter)
    with caplog.at_level(logging.INFO, "test.arbiter"):
        arbiter.manage_workers()
        arbiter.manage_workers()
        assert [w.booted for w in arbiter.WORKERS.values()] == [False, False]
        beat(arbiter, 102)
        arbiter.reap_workers()
    assert [w.booted for w in arbiter.WORKERS.values()] == [False, True]
    assert caplog.messages == ["worker 102 serves"]


def test_a_reload_keeps_the_old_workers_until_every_new_one_serves():
    arbiter = started()
    arbiter.reload()  # HUP
    assert sorted(arbiter.WORKERS) == [101, 102, 103, 104] and arbiter.killed == []
    beat(arbiter, 103)
    arbiter.reap_workers()
    arbiter.manage_workers()
    assert arbiter.killed == []  # 104 is still loading the shop
    beat(arbiter, 104)
    arbiter.reap_workers()
    assert arbiter.killed == [(101, signal.SIGTERM), (102, signal.SIGTERM)]
    arbiter.exit(101)
    arbiter.exit(102)
    arbiter.manage_workers()
    assert sorted(arbiter.WORKERS) == [103, 104] and len(arbiter.killed) == 2


def test_old_workers_stay_when_every_new_one_died_loading():
    arbiter = started()
    arbiter.reload()
    arbiter.exit(103)
    arbiter.exit(104)
    arbiter.manage_workers()
    assert sorted(arbiter.WORKERS) == [101, 102] and arbiter.killed == []


def test_winch_stops_the_workers_of_a_master_that_started_a_new_one():
    arbiter = started()
    arbiter.handle_winch()  # no upgrade under way: a terminal was resized
    assert arbiter.winched == 1 and arbiter.killed == [] and arbiter.num_workers == 2
    arbiter.reexec_pid = 4242  # USR2
    arbiter.handle_winch()
    assert arbiter.winched == 1 and arbiter.num_workers == 0
    assert arbiter.killed == [(101, signal.SIGTERM), (102, signal.SIGTERM)]
