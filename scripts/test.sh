#!/usr/bin/env bash
# Installs what the test suite needs, then runs it: ./scripts/test.sh [pytest arguments]
#
# System packages (redis-server, mariadb-server, libmariadb-dev, pkg-config, chromium +
# chromium-driver for the browser test, prometheus for promtool, which checks /metrics,
# and for the deployment kit's tests nginx, openssl, systemd's systemd-analyze and uWSGI
# with its python3 plugin) are installed with apt-get where they are missing and we are
# root or have sudo; without them the service tests skip with a reason naming the package.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mariadb 2>/dev/null \
  || pkg-config --exists mysqlclient 2>/dev/null || need+=(libmariadb-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# promtool checks the /metrics text
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Japanese glyphs in the browser tests' screenshots
dpkg -s fonts-ipafont-gothic >/dev/null 2>&1 || need+=(fonts-ipafont-gothic)
# The deployment kit (deploy/): nginx in front of the shop, with a certificate made by
# openssl; pgrep counts gunicorn's workers
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
# systemd-analyze verify checks the kit's units (it needs no running systemd)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The shared-hosting entry file under a second WSGI server
command -v uwsgi >/dev/null 2>&1 || need+=(uwsgi-core)
dpkg -s uwsgi-plugin-python3 >/dev/null 2>&1 || need+=(uwsgi-plugin-python3)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  if [ "$sudo" = none ]; then
    echo "test.sh: missing ${need[*]}; install them with apt-get (needs root) or the service tests skip" >&2
  else
    echo "test.sh: installing ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/pip install -q -e ".[test,mysql]"; then
  echo "test.sh: mysqlclient did not build (libmariadb-dev missing?); MariaDB tests will skip" >&2
  .venv/bin/pip install -q -e ".[test]"
fi
exec .venv/bin/pytest "$@"
