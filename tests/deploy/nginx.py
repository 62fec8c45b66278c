"""nginx with the deployment kit's site (deploy/nginx/ecshop.conf) in front of a real
shop: it runs from a temp folder (its own prefix, pid, logs and temp paths) on free high
ports, with a self-signed certificate made for 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from ecshop.resources.static import FOLDER as STATIC
from ecshop.testing.servers import free_port
from tests.deploy.conftest import DEPLOY, listening, render, system_binary, until

SITE = DEPLOY / "nginx" / "ecshop.conf"
NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
worker_rlimit_nofile {files};
events {{ worker_connections {connections}; }}
http {{
    types {{ text/html html; text/css css; text/javascript js; image/png png; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    include {d}/ecshop.conf;
}}
"""


class FromAddress(HTTPAdapter):
    """Connections made from a chosen local address (a client other than the proxy)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Nginx:
    """nginx with the kit's site, rendered for a temp folder, free ports and ``shop``;
    one worker process with ``connections`` connections."""

    def __init__(self, directory: Path, shop_port: int, *, site: str | None = None,
                 connections: int = 128) -> None:  # fmt: skip
        self.d = directory
        self.http_port, self.https_port = free_port(), free_port()
        self.cert = directory / "tls" / "fullchain.pem"
        for sub in ("logs", "temp", "tls", "acme", "media/products"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [system_binary("openssl", "openssl"), "req", "-x509", "-nodes", "-days", "2",
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(directory / "tls" / "privkey.pem"), "-out", str(self.cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        text = render(site if site is not None else SITE.read_text(), {
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen [::]:80;": "",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "/etc/letsencrypt/live/shop.example.com/": f"{directory}/tls/",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{shop_port};",
            "/srv/ecshop/static/": f"{STATIC}/",
            "/srv/ecshop/media/": f"{directory}/media/",
            "/var/log/nginx/": f"{directory}/logs/",
            "/var/www/html": f"{directory}/acme",
        })  # fmt: skip
        (directory / "ecshop.conf").write_text(text)
        # NOTE: nginx run by root switches its workers to `nobody`, who cannot read a
        # pytest temp folder; as any other user the `user` line is left out.
        user = "user root;" if os.geteuid() == 0 else ""
        # NOTE: each proxied request holds two connections (the client's and the shop's),
        # and each connection a file.
        main = NGINX_CONF.format(d=directory, user=user, connections=connections,
                                 files=2 * connections + 64)  # fmt: skip
        (directory / "nginx.conf").write_text(main)
        self.binary = system_binary("nginx", "nginx")
        self.argv = [self.binary, "-p", f"{directory}/", "-e", f"{directory}/logs/error.log",
                     "-c", f"{directory}/nginx.conf"]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        with open(self.d / "logs" / "stderr.log", "ab") as err:
            self.proc = proc = subprocess.Popen(self.argv, stderr=err)
        try:
            until(lambda: proc.poll() is not None or listening(self.https_port),
                  "nginx did not listen")  # fmt: skip
            assert proc.poll() is None, self.error_log()
        except BaseException:
            self.stop()
            raise
        return self

    def error_log(self) -> str:
        logs = (self.d / "logs" / name for name in ("stderr.log", "error.log"))
        return "".join(path.read_text() for path in logs if path.exists())

    def access_log(self) -> str:
        path = self.d / "logs" / "ecshop.access.log"
        return path.read_text() if path.exists() else ""

    def client(self, address: str = "127.0.0.2") -> requests.Session:
        """An HTTPS client connecting from ``address`` that checks the test certificate."""
        http = requests.Session()
        http.mount("https://", FromAddress(address))
        http.mount("http://", FromAddress(address))
        http.verify = str(self.cert)
        http.trust_env = False  # REQUESTS_CA_BUNDLE would override the session's verify
        return http

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish, then exit
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
