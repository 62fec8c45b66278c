"""gunicorn settings for ``ecshop serve`` (bind and workers come from the command line).

Threaded workers (``ECSHOP_THREADS`` per worker, 8 by default): a request waiting for
its durable commit leaves the CPU to the others, concurrent checkouts share one commit
(group commit) where the database has a single writer, and a client that sends its
request slowly holds one thread, not a whole worker. A request body must arrive within
``ECSHOP_BODY_TIMEOUT`` seconds (408 after that), so slow clients cannot keep threads
for long either. A front proxy that buffers requests (see the README) is still the
first line against slow clients.
"""

import sys

from ecshop._arbiter import keep_serving
from ecshop._gunicorn import (
    bound_body,
    drop_made_metrics_dir,
    instance_files,
    prepare_reexec,
    retire_worker,
    share_metrics_dir,
    unbind_body,
)
from ecshop.config import check_serving, load_config
from ecshop.errors import ConfigError
from ecshop.logconf import configure_logging

try:
    _config = load_config()
    check_serving(_config)
    _files = instance_files(_config)
except ConfigError as exc:
    # One line and a non-zero exit, as `ecshop serve` gives, not gunicorn's traceback.
    print(f"ecshop: {exc.message}", file=sys.stderr)
    sys.exit(2)
# The master's logging; MaskedLogger applies the same configuration again once gunicorn
# has set up its own, and the workers inherit it.
configure_logging(_config.log_level, _config.log_format, repeat_every=_config.log_repeat_every)

worker_class = "sync"  # gunicorn runs gthread when threads > 1
threads = _config.threads
# NOTE: gunicorn's default. A cap near the thread count (it was threads * 2) made a
# worker stop accepting while its kept-alive connections sat idle and close the rest
# after one request, so clients past the cap waited for the accept loop's one-second
# tick. An idle kept-alive connection costs no thread; a slow body costs one thread for
# at most ECSHOP_BODY_TIMEOUT.
worker_connections = 1000
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
accesslog = None
errorlog = "-"
loglevel = _config.log_level.lower()
logger_class = "ecshop._gunicorn.MaskedLogger"
# This instance's pid file and control socket (gunicornc -s <data folder>/gunicorn.ctl),
# in its data folder; a path too long for a unix socket means no control socket.
pidfile = _files.pidfile
control_socket = _files.control_socket or ""
control_socket_disable = _files.control_socket is None
# Each worker opens its own connections after the fork (the store does this lazily).
preload_app = False


def pre_request(worker, req):  # type: ignore[no-untyped-def]
    """Start the clock on the request body (``ECSHOP_BODY_TIMEOUT``)."""
    bound_body(req, _config.body_timeout)


def post_request(worker, req, environ, resp):  # type: ignore[no-untyped-def]
    unbind_body(req)


def on_starting(server):  # type: ignore[no-untyped-def]
    """Give the workers one folder to share their metrics in (``ecshop.metrics``); let
    the old workers serve until the new ones do, on HUP and on a USR2 upgrade
    (``ecshop._arbiter``)."""
    share_metrics_dir(server, load_config())
    keep_serving(server)


def pre_exec(server):  # type: ignore[no-untyped-def]
    prepare_reexec(server)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    retire_worker(worker.pid)


def when_ready(server):  # type: ignore[no-untyped-def]
    if _files.control_socket is None:
        server.log.warning("no control socket: the data folder's path %s is too long for one",
                           _files.folder)  # fmt: skip
    _files.point_link()


def on_exit(server):  # type: ignore[no-untyped-def]
    _files.drop_link()
    drop_made_metrics_dir(server)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """A clean stop gives the reconciler's lease back at once (another worker, or the
    next instance, leads without waiting for it to run out)."""
    background = getattr(worker, "ecshop_reconciler", None)
    if background is not None:
        background.stop(timeout=min(10.0, graceful_timeout / 2))


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the reconciler loop in each worker (a database lease lets one run at a
    time), the sampler of the worker's memory and CPU time for ``/metrics``, and the
    prompt mail sender (``ECSHOP_MAIL_PROMPT``)."""
    from ecshop.metrics import start_process_sampler
    from ecshop.reconcile import start_background

    worker.ecshop_reconciler = start_background(worker.wsgi)
    start_process_sampler()
    shop = getattr(worker.wsgi, "shop", None)
    if shop is not None and shop.config.mail_prompt:
        shop.mail.start_prompt()
