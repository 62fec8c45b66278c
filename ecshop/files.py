"""Files only their owner may read: the database, exports, backups and secrets.

Everything the shop writes that holds customer data or a secret is created with mode
0600 and every folder it creates with 0700 (a umask only ever takes bits away). Files and
folders that exist already keep their mode: the owner may have chosen it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents with mode 0700; return it."""
    folder = Path(path)
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            continue
    return folder


def create_private(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` empty with mode 0600; False (and nothing opened) if it exists.

    NOTE: an existing file is never opened, not even to be closed at once: closing any
    descriptor of a file drops every POSIX lock this process holds on it, and SQLite
    keeps its locks on the database that way, for all its connections in the process.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: str | os.PathLike[str]) -> IO[bytes]:
    """A new file at ``path`` (replacing any earlier one) with mode 0600, open for writing.

    An earlier file is removed first rather than truncated, so the new one never
    inherits a looser mode.
    """
    Path(path).unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb")


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a new file at ``path`` with mode 0600."""
    with open_private(path) as out:
        out.write(text.encode("utf-8"))
