"""The folder of the workers' metric files, kept by the gunicorn master.

prometheus_client's multiprocess mode gives every process files of its own
(``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_liveall_<pid>.db``…) in one folder,
and a scrape adds them all up. The master empties the folder when it starts (a USR2
child keeps it: it shares its parent's counts); when a worker exits, its live gauges
go (``mark_process_dead``) and its counters and histograms are added into
``counter_archive.db`` and ``histogram_archive.db``, so the folder holds one set of
files per live worker and a total never goes down, however often workers are recycled.

Folding takes an exclusive lock on ``.lock`` in the folder, a scrape a shared one: a
scrape never sees a dead worker's counts twice (archived and still in its file) or not
at all. Only scrapes and exits take it, never a request.

NOTE: prometheus_client is imported inside the functions: it picks its multiprocess
mode when first imported, and the workers forked from the master inherit that choice,
so the master must not import it before ``PROMETHEUS_MULTIPROC_DIR`` is set.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecshop.files import FILE_MODE, private_dir

log = logging.getLogger("ecshop.metrics")

LOCK = ".lock"
ARCHIVE = "archive"
#: marks a temporary folder ``ecshop serve`` made (and removes when it is done)
MADE = ".made-by-ecshop"
FOLDED = ("counter", "histogram")


@contextmanager
def locked(folder: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the folder's lock, shared or exclusive, for the ``with`` block."""
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # and the lock with it


def prepare(folder: str, *, fresh: bool) -> None:
    """Create the folder (0700); with ``fresh``, drop an earlier server's files."""
    private_dir(folder)
    if not fresh:
        return
    with locked(folder, exclusive=True):
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)


def retire(folder: str, pid: int) -> None:
    """A worker exited: drop its live gauges and archive its counters and histograms."""
    from prometheus_client.mmap_dict import MmapedDict
    from prometheus_client.multiprocess import mark_process_dead

    with locked(folder, exclusive=True):
        mark_process_dead(pid, folder)
        for kind in FOLDED:
            dead = os.path.join(folder, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            try:
                entries = list(MmapedDict.read_all_values_from_file(dead))
            except (OSError, RuntimeError) as exc:  # left as it is: still counted
                log.warning("metrics of worker %s not archived: %s", pid, exc)
                continue
            archive = MmapedDict(os.path.join(folder, f"{kind}_{ARCHIVE}.db"))
            try:
                for key, value, timestamp, _ in entries:
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            os.unlink(dead)


def made_here(folder: str) -> bool:
    """True for a temporary folder that ``ecshop serve`` made."""
    return os.path.exists(os.path.join(folder, MADE))


def mark_made(folder: str) -> None:
    Path(folder, MADE).touch(mode=FILE_MODE)
