"""What ``ecshop/gunicorn.conf.py`` plugs into gunicorn: masked logs, a deadline on
request bodies, and the folder the workers share their metrics in.

A client that trickles its body (a byte a second, never finishing) would hold a worker
thread for as long as it likes: the socket's own timeout counts from one byte to the
next. Here every read of a request's body gets the time that is left until one deadline,
``ECSHOP_BODY_TIMEOUT`` seconds after its headers arrived; past it the app answers
408 ``request_timeout`` and gunicorn closes the connection.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from ecshop import _metricsdir
from ecshop.config import Config, load_config, multiprocess_dir
from ecshop.errors import RequestTimeout
from ecshop.logconf import configure_logging
from ecshop.redact import install_filter

log = logging.getLogger("ecshop.http")


class MaskedLogger(Logger):
    """gunicorn's logger, on the shop's logging configuration (:mod:`ecshop.logconf`:
    its format, level and request ids), with passwords masked in the error and access
    logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        config = load_config()
        # NOTE: gunicorn has just put its own handler on its error log; this replaces it.
        configure_logging(config.log_level, config.log_format,
                          repeat_every=config.log_repeat_every)  # fmt: skip
        for logger in (self.error_log, self.access_log):
            install_filter(logger)


class DeadlineSocket:
    """A socket whose reads fail with :class:`RequestTimeout` once ``deadline``
    (``time.monotonic()``) has passed, however slowly the bytes come."""

    def __init__(self, sock: socket.socket, deadline: float, limit: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.limit = limit
        self.expired = False

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return self._expire()
        before = self.sock.gettimeout()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            return self._expire()
        finally:
            self.sock.settimeout(before)

    def _expire(self) -> bytes:
        self.expired = True
        raise RequestTimeout(
            f"the request body did not arrive within {self.limit:g} seconds", limit=self.limit
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def bound_body(req: Any, timeout: float) -> None:
    """Put the body of ``req`` (a gunicorn request) under a deadline ``timeout`` seconds
    from now. Call :func:`unbind_body` once the response is sent."""
    unreader: Any = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if isinstance(sock, socket.socket):
        unreader.sock = DeadlineSocket(sock, time.monotonic() + timeout, timeout)


def unbind_body(req: Any) -> None:
    """Give the connection its own socket back (gunicorn drains or reuses it next)."""
    unreader: Any = getattr(req, "unreader", None)
    bounded = getattr(unreader, "sock", None)
    if isinstance(bounded, DeadlineSocket):
        unreader.sock = bounded.sock
        if bounded.expired:
            # NOTE: part of the body is still unread, so where a next request would
            # start is unknown: gunicorn closes a connection whose body failed.
            req.body.failed = True
            log.warning("cut off a request body that did not arrive within %gs", bounded.limit)


# -- the workers' metrics folder (ecshop.metrics, ecshop._metricsdir) ----------------------
def share_metrics_dir(server: Any, config: Config) -> str:
    """``on_starting``: give the workers one folder for their metrics, in
    ``PROMETHEUS_MULTIPROC_DIR`` (and ``ECSHOP_METRICS_DIR``), which they inherit.

    A fresh master empties it; the new master of a USR2 upgrade keeps it, since the old
    one's workers still count there and their counts are the shop's."""
    folder = config.metrics_home
    if not folder:
        folder = tempfile.mkdtemp(prefix="ecshop-metrics-")
        _metricsdir.mark_made(folder)
    folder = os.path.abspath(folder)
    _metricsdir.prepare(folder, fresh=not getattr(server, "master_pid", 0))
    os.environ["ECSHOP_METRICS_DIR"] = folder
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def prepare_reexec(server: Any) -> None:
    """``pre_exec`` (USR2), in the child about to become the new master.

    gunicorn re-executes ``sys.argv``, which ``python -m gunicorn`` (how ``ecshop serve``
    starts it) leaves as ``…/gunicorn/__main__.py``: run as a script, the package's own
    ``gunicorn/http`` would hide the standard ``http`` module and no worker could
    boot. The new master is started with ``-m gunicorn`` again. It also gets the
    environment gunicorn started with, so a temporary metrics folder is passed on.
    """
    server.START_CTX["args"] = reexec_args(server.START_CTX["args"])
    folder = multiprocess_dir()
    if folder and _metricsdir.made_here(folder):
        server.cfg.env_orig["ECSHOP_METRICS_DIR"] = folder


def reexec_args(args: list[str]) -> list[str]:
    """``[python, …/gunicorn/__main__.py, *rest]`` as ``[python, -m, gunicorn, *rest]``."""
    script = Path(args[1]) if len(args) > 1 else None
    if script is not None and script.name == "__main__.py" and script.parent.name == "gunicorn":
        return [args[0], "-m", "gunicorn", *args[2:]]
    return list(args)


def retire_worker(pid: int) -> None:
    """``child_exit``: fold the dead worker's counts into the folder's archive."""
    folder = multiprocess_dir()
    if not folder:
        return
    try:
        _metricsdir.retire(folder, pid)
    except Exception:  # the master must outlive any trouble with metric files
        log.exception("metrics of worker %s not retired", pid)


def drop_made_metrics_dir(server: Any) -> None:
    """``on_exit``: remove a temporary folder, unless a USR2 master (new or old) lives on."""
    folder = multiprocess_dir()
    parent = getattr(server, "master_pid", 0)
    if getattr(server, "reexec_pid", 0) or (parent and parent == os.getppid()):
        return
    if folder and _metricsdir.made_here(folder):
        shutil.rmtree(folder, ignore_errors=True)


# -- the instance's own files in its data folder ----------------------------------------
#: AF_UNIX paths are at most 107 bytes on Linux
MAX_SOCKET_PATH = 107
CONTROL_LINK = "gunicorn.ctl"


class InstanceFiles:
    """gunicorn's pid file and control socket, in the data folder of this shop
    (``ECSHOP_DATA_DIR``, or beside its SQLite database), so two shops on one host
    never share them (gunicorn's own default is one socket per user).

    Each master binds ``gunicorn-<pid>.ctl`` and points the link ``gunicorn.ctl`` at it
    once it is ready (``gunicornc -s <data folder>/gunicorn.ctl``): the new master of a
    USR2 upgrade takes the link over, and the old one, as it exits, removes only its
    own socket, never the new one's.
    """

    def __init__(self, folder: Path, pid: int) -> None:
        self.folder = folder.absolute()
        self.pid = pid

    @property
    def pidfile(self) -> str:
        return str(self.folder / "gunicorn.pid")

    @property
    def control_socket(self) -> str | None:
        """This master's socket, or None when its path is too long for a unix socket."""
        path = str(self.folder / f"gunicorn-{self.pid}.ctl")
        return path if len(path.encode()) <= MAX_SOCKET_PATH else None

    @property
    def link(self) -> Path:
        return self.folder / CONTROL_LINK

    def point_link(self) -> None:
        """``when_ready``: the link names this master's socket; sockets of masters that
        are gone are removed."""
        socket_path = self.control_socket
        if socket_path is None:
            return
        for stale in self.folder.glob("gunicorn-*.ctl"):
            pid = stale.stem.removeprefix("gunicorn-")
            if pid.isdigit() and int(pid) != self.pid and not _alive(int(pid)):
                stale.unlink(missing_ok=True)
        temporary = self.folder / f".{CONTROL_LINK}.{self.pid}"
        temporary.unlink(missing_ok=True)
        os.symlink(Path(socket_path).name, temporary)
        os.replace(temporary, self.link)

    def drop_link(self) -> None:
        """``on_exit``: remove the link if it still names this master's socket."""
        socket_path = self.control_socket
        try:
            if socket_path and os.readlink(self.link) == Path(socket_path).name:
                self.link.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def instance_files(config: Config) -> InstanceFiles:
    """This master's :class:`InstanceFiles`, its data folder made (mode 0700).

    Raises:
        ConfigError: the data folder cannot be made.
    """
    from ecshop.errors import ConfigError
    from ecshop.files import private_dir

    try:
        folder = private_dir(config.data_folder)
    except OSError as exc:
        raise ConfigError(
            f"ECSHOP_DATA_DIR: cannot make the data folder {config.data_folder}: {exc.strerror}"
        ) from exc
    return InstanceFiles(folder, os.getpid())
