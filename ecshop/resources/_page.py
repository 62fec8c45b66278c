"""What the storefront's HTML pages share: the session and its cookie, the posted form
with its CSRF check, the page language, rendering and the security headers.

A resource that serves pages sets ``uses_session = True``; :class:`PageSessions` then
gives it ``req.context.session`` (a :class:`ecshop.sessions.Session`) and, on a POST,
``req.context.form`` once the form's ``csrf_token`` matched the session's. A form may be
URL-encoded or ``multipart/form-data`` (a file input): its fields are in ``form`` (the
first value of each name) and ``form_lists`` (every value, for checkboxes), its files in
``req.context.files`` (:class:`Upload`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import falcon
from falcon.media.multipart import MultipartFormHandler, MultipartParseOptions

from ecshop.errors import BadRequest, Forbidden
from ecshop.render import Renderer, negotiate
from ecshop.resources._declare import Answer
from ecshop.resources._http import read_body
from ecshop.sessions import Session, SessionStore

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 200
LANG_COOKIE = "lang"
HTML_ANSWER = Answer(200, "the page", {"type": "string"}, "text/html")
SEE_OTHER = Answer(303, "on to the next page")


class CsrfFailed(Forbidden):
    """A form POST without this session's CSRF token."""

    code = "csrf_failed"


@dataclass(frozen=True)
class Upload:
    """A file sent with a form: the name the browser gave it, and its bytes."""

    filename: str
    data: bytes


def multipart_handler(max_body: int) -> MultipartFormHandler:
    """Falcon's ``multipart/form-data`` parser (``req.get_media()``) within the body
    limit and the pages' field count."""
    options = MultipartParseOptions()
    options.max_body_part_count = MAX_FIELDS
    options.max_body_part_buffer_size = max_body
    return MultipartFormHandler(options)


def csp(form_action: tuple[str, ...] = ()) -> str:
    """The pages' Content-Security-Policy: nothing inline, nothing from elsewhere; a
    form may post to this shop and to the origins named (a form-post gateway's)."""
    targets = " ".join(("'self'", *form_action))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action {targets}; "
        "frame-ancestors 'none'"
    )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def secure_headers(resp: falcon.Response, policy: str | None = None) -> None:
    """The headers every HTML page carries (a page that sets its own policy keeps it)."""
    if policy or not resp.get_header("Content-Security-Policy"):
        resp.set_header("Content-Security-Policy", policy or csp())
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "same-origin")


def page_language(req: falcon.Request) -> str:
    chosen = req.get_cookie_values(LANG_COOKIE) or []
    return negotiate(req.get_header("Accept-Language"), chosen[0] if chosen else None)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path of this shop (no scheme, no host), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class PageSessions:
    """Loads the session of page resources, checks the CSRF token of their form POSTs,
    saves the session and sets its cookie; gives every HTML answer its security headers.

    Args:
        sessions: the session store.
        https: the shop is served over HTTPS (``ECSHOP_BASE_URL``): the cookie is then
            ``Secure`` and takes the ``__Host-`` prefix.
    """

    def __init__(self, sessions: SessionStore, *, https: bool, max_body: int,
                 name: str = "ecshop_session", marker: str = "uses_session",
                 same_site: str = "Lax") -> None:  # fmt: skip
        self.sessions = sessions
        self.https = https
        self.cookie = ("__Host-" if https else "") + name
        self.max_body = max_body
        self.marker = marker
        self.same_site = same_site

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if not getattr(resource, self.marker, False):
            return
        values = req.get_cookie_values(self.cookie) or []
        session = self.sessions.load(values[0] if values else None) or self.sessions.new()
        req.context.session = session
        req.context.session_id_sent = session.id
        if req.method == "POST":
            pairs, req.context.files = self._fields(req)
            form: dict[str, str] = {}
            lists: dict[str, list[str]] = {}
            for name, value in pairs:
                form.setdefault(name, value)
                lists.setdefault(name, []).append(value)
            req.context.form, req.context.form_lists = form, lists
            if not session.csrf_ok(form.get("csrf_token")):
                raise CsrfFailed(
                    "this form has expired or did not come from this shop: "
                    "go back, reload the page and try again"
                )

    def _fields(self, req: falcon.Request) -> tuple[list[tuple[str, str]], dict[str, Upload]]:
        """The posted fields in order, and the files by field name (the first of each)."""
        if (req.content_type or "").lower().startswith(MULTIPART):
            return self._multipart(req)
        text = read_body(req, self.max_body).decode("utf-8", "replace")
        try:
            return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS), {}
        except ValueError:
            return [], {}

    def _multipart(self, req: falcon.Request) -> tuple[list[tuple[str, str]], dict[str, Upload]]:
        pairs: list[tuple[str, str]] = []
        files: dict[str, Upload] = {}
        # NOTE: without a Content-Length nothing bounds the body (RequestGuard checks the
        # length): such a form is read as empty, so it fails the CSRF check.
        if not req.content_length:
            return pairs, files
        try:
            for part in req.get_media():
                name = part.name or ""
                if part.filename is None:
                    pairs.append((name, part.get_data().decode("utf-8", "replace")))
                    continue
                data = part.stream.read()
                if name not in files and (part.filename or data):  # "" and no bytes: none chosen
                    files[name] = Upload(part.filename, data)
        except falcon.HTTPBadRequest as exc:  # a malformed form, or no boundary
            raise BadRequest(
                f"the form could not be read ({exc.description or 'malformed'})"
            ) from exc
        return pairs, files

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if str(resp.content_type or "").startswith("text/html"):
            secure_headers(resp)
        session: Session | None = getattr(req.context, "session", None)
        if not getattr(resource, self.marker, False):
            return
        if session is None or (session.new and int(str(resp.status)[:3]) >= 400):
            return  # a refused request leaves no session behind
        # a login or logout replaced the session: the browser gets the new id
        fresh = session.new or session.id != getattr(req.context, "session_id_sent", None)
        saved = self.sessions.needs_save(session)
        if saved:
            self.sessions.save(session)
        if fresh or saved:  # the cookie's Max-Age follows the row's expiry
            self._set_cookie(resp, session)

    def _set_cookie(self, resp: falcon.Response, session: Session) -> None:
        resp.set_cookie(
            self.cookie, self.sessions.cookie_value(session), max_age=self.sessions.ttl,
            path="/", secure=self.https, http_only=True, same_site=self.same_site,
        )  # fmt: skip


def render(renderer: Renderer, req: falcon.Request, resp: falcon.Response, template: str,
           context: dict[str, Any], status: int = 200) -> None:  # fmt: skip
    """Answer with ``template``; the context gets the session's CSRF token, its one-shot
    messages, the cart's size and the page language."""
    session: Session | None = getattr(req.context, "session", None)
    lang = page_language(req)
    base = {"csrf_token": "", "flashes": [], "cart_count": 0, "path": req.relative_uri,
            "logged_in": False}  # fmt: skip
    if session is not None:
        cart = session.get("cart", {})
        base.update(csrf_token=session.csrf_token, flashes=session.take_flashes(),
                    cart_count=sum(int(q) for q in cart.values()),
                    logged_in=session.member_id is not None)  # fmt: skip
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.cache_control = ["no-store"]
    resp.text = renderer.render(template, {**base, **context}, lang)


def see_other(resp: falcon.Response, location: str) -> None:
    """Post-redirect-get."""
    resp.status = falcon.HTTP_303
    resp.location = location
    resp.cache_control = ["no-store"]
