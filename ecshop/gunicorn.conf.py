"""gunicorn settings for ``ecshop serve`` (bind and workers come from the command line).

Sync workers: each request runs to its durable commit before the next, which is what
a 2-core box serves best; the stock engine and the database do the concurrency.
"""

worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
accesslog = None
errorlog = "-"
loglevel = "info"
# Each worker opens its own connections after the fork (the store does this lazily).
preload_app = False


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the reconciler loop in each worker; a database lease lets one run at a time."""
    from ecshop.reconcile import start_background

    start_background(worker.wsgi)
