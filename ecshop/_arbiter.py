"""What ecshop changes in gunicorn's master (the arbiter) so that a deploy stops no
request: a reload (HUP) keeps the old workers serving until the new ones have loaded
the shop, and WINCH stops the old master's workers during a binary upgrade (USR2).

``gunicorn.conf.py`` installs both from ``on_starting``. The arbiter looks each
signal's handler, and the steps it calls on itself, up by name on the instance, so the
methods set here on the instance are the ones it calls.
"""

from __future__ import annotations

import signal
from typing import Any


def keep_serving(server: Any) -> None:
    """``on_starting``: install :class:`Handover` and :func:`stop_workers_on_winch`."""
    Handover(server)
    stop_workers_on_winch(server)


class Handover:
    """A reload (HUP) whose old workers serve until every new worker has loaded the shop.

    gunicorn's reload starts the new workers and stops the old ones at once: for as long
    as the new ones take to import and build the shop (seconds on a busy server) no
    worker accepts, and requests wait in the listen queue. Behind nginx, which stamps
    ``X-Request-Start``, a storefront request that waited past ``ECSHOP_SHED_QUEUE_MS``
    was then shed with a 503. Here the old workers are stopped (SIGTERM: each finishes
    its requests) only once each new worker serves.

    A worker serves once it has beaten its heartbeat, which it first does on entering
    its request loop. gunicorn marks a worker ``booted`` in the worker's own process
    only, so its control socket (``gunicornc show workers``) said "no" for every worker;
    here the master marks it too, and logs it.

    gunicorn stops surplus workers in ``manage_workers`` (the oldest first), which its
    reload and its main loop call; that step waits while old workers are kept. The check
    runs there and after each reaping of workers, which gunicorn's reload repeats while
    it waits for the old workers to exit.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        #: the workers to stop once the new ones serve (empty: no reload under way)
        self.old: set[int] = set()
        #: the heartbeat of each worker not serving yet, as first seen
        self.first_beat: dict[int, float] = {}
        self._reload = server.reload
        self._manage_workers = server.manage_workers
        self._reap_workers = server.reap_workers
        server.reload = self.reload
        server.manage_workers = self.manage_workers
        server.reap_workers = self.reap_workers

    def reload(self) -> None:
        self.old = set(self.server.WORKERS)
        self._reload()

    def manage_workers(self) -> None:
        if self.check():
            self._manage_workers()
            self.check()  # a first look at the workers it started

    def reap_workers(self) -> None:
        self._reap_workers()
        self.check()

    def check(self) -> bool:
        """Mark the workers that serve; stop the old ones once every new one serves.

        Returns:
            True when no old worker is kept.
        """
        workers = self.server.WORKERS
        self._mark_serving(workers)
        self.old &= set(workers)
        if not self.old:
            return True
        new = [worker for pid, worker in workers.items() if pid not in self.old]
        if not all(worker.booted for worker in new):
            return False
        # NOTE: with no new worker left (each died loading), the old ones stay: gunicorn
        # stops a server whose workers cannot boot, or starts new ones as usual.
        if new:
            self.server.log.info("new workers %s serve: stopping the old ones %s",
                                 sorted(w.pid for w in new), sorted(self.old))  # fmt: skip
            for pid in sorted(self.old):
                self.server.kill_worker(pid, signal.SIGTERM)
        self.old.clear()
        return True

    def _mark_serving(self, workers: dict[int, Any]) -> None:
        for pid in set(self.first_beat) - set(workers):
            del self.first_beat[pid]  # died before it served
        for pid, worker in workers.items():
            if worker.booted:
                continue
            beat = worker.tmp.last_update()
            if self.first_beat.setdefault(pid, beat) != beat:
                worker.booted = True
                del self.first_beat[pid]
                self.server.log.info("worker %s serves", pid)


def stop_workers_on_winch(server: Any) -> None:
    """WINCH to the old master of a USR2 upgrade stops its workers gracefully (each
    finishes its requests) while the new master's workers serve.

    gunicorn honours WINCH only when daemonized, and ``ecshop serve`` runs in the
    foreground (under systemd, or in a terminal, which sends WINCH at every resize).
    The upgrade sequence USR2, WINCH, QUIT then came to QUIT with the old workers still
    serving, and QUIT stops workers at once: a sync worker (``ECSHOP_THREADS=1``)
    answered the request it was in with a 500. Here a master that has started a new one
    (``reexec_pid``) stops its workers on WINCH as a daemon would; any other WINCH is
    left to gunicorn, so a resized terminal stops nothing that has no successor.
    """
    foreground_winch = server.handle_winch

    def handle_winch() -> None:
        if not server.reexec_pid:
            foreground_winch()
            return
        server.log.info("graceful stop of workers: the new master %s serves", server.reexec_pid)
        server.num_workers = 0  # none is started again (a HUP would start them)
        server.kill_workers(signal.SIGTERM)

    server.handle_winch = handle_winch
