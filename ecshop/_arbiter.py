"""What ecshop changes in gunicorn's master (the arbiter) so that a deploy stops no
request: WINCH stops the old master's workers during a binary upgrade (USR2).

``gunicorn.conf.py`` installs it from ``on_starting``. The arbiter looks each signal's
handler up by name on the instance, so the handler set here on the instance is the one
it calls.
"""

from __future__ import annotations

import signal
from typing import Any


def keep_serving(server: Any) -> None:
    """``on_starting``: install :func:`stop_workers_on_winch`."""
    stop_workers_on_winch(server)


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
