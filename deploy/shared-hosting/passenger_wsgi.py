"""ecshop on a shared host: the WSGI entry file Passenger loads (cPanel's "Setup Python
App" and the like), also fit for any server that loads a file (uWSGI's --wsgi-file,
mod_wsgi's WSGIScriptAlias).

The settings come from ``ecshop.toml`` next to this file: SQLite in a private folder, no
Redis, and no reconciler loop in the web processes (the host starts and stops them as it
likes); cron runs ``ecshop reconcile --once`` every minute instead. See README.md here.

Like ``ecshop serve`` it refuses weak secrets and sends the logs to standard error
(Passenger keeps them in its log). Unlike it, it does not migrate: the host may start
several processes at once, so ``ecshop migrate`` is run by hand after an install or an
upgrade, and until then the app refuses to load, naming that command.
"""

from __future__ import annotations

from pathlib import Path

from ecshop.app import create_app
from ecshop.config import check_serving, load_config
from ecshop.logconf import configure_logging

HERE = Path(__file__).resolve().parent

config = load_config(toml_path=HERE / "ecshop.toml")
check_serving(config)
configure_logging(config.log_level, config.log_format)
application = create_app(config)
