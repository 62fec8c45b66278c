"""Server-rendered pages: Jinja2 templates (autoescaped), a theme folder that overrides
them, Japanese and English through gettext catalogs, and the ``storefront_context``
filter on every page's context.

The catalogs are the ``.po`` files in ``ecshop/locale/<lang>/LC_MESSAGES/``, compiled in
memory when the shop starts, so there is no build step. The message ids are English:
English needs no catalog.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2.filters import do_urlencode
from markupsafe import Markup, escape

from ecshop.money import format_money
from ecshop.pages import template_context

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOCALES = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
#: translations kept per language once looked up (the templates' messages are literals)
MAX_MESSAGES = 4096
_DICT_ATTRIBUTES = frozenset(dir(dict))
#: a text ``urlencode`` leaves as it is (``urllib.parse.quote``'s safe characters and /)
_URL_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")


def load_translations(lang: str, folder: Path = LOCALES) -> NullTranslations:
    """The catalog of ``lang`` read from its ``.po`` file (none for English)."""
    po = folder / lang / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def negotiate(accept_language: str | None, cookie: str | None) -> str:
    """The page language: the ``lang`` cookie, else the best of ``Accept-Language``."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((-weight, position, tag.split("-")[0].lower()))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE


#: markupsafe's own escaping of a text (its C speed-up), when this markupsafe has one
_ESCAPE_TEXT: Callable[[str], str] | None = getattr(markupsafe, "_escape_inner", None)
_new_text = str.__new__


def _escape(value: Any) -> Markup:
    """markupsafe's ``escape`` for the templates' output, its common cases answered
    without its two Python layers: a text escaped, markup as it is, an integer's digits
    (nothing to escape in them); anything else through ``escape`` itself."""
    kind = type(value)
    if kind is str:
        return _new_text(Markup, _ESCAPE_TEXT(value))  # type: ignore[misc]
    if kind is Markup:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return _new_text(Markup, str(value))
    return escape(value)


class _Template(jinja2.Template):
    """Jinja's template, escaping its output with :func:`_escape`.

    A compiled template calls ``escape`` around every value it outputs, a dozen times
    for each product of a catalog page; the name is looked up in the template's module,
    so it is set there once the template is compiled and loaded.
    """

    @classmethod
    def from_code(cls, environment: jinja2.Environment, code: Any,
                  globals: Any, uptodate: Any = None) -> jinja2.Template:  # fmt: skip
        template = super().from_code(environment, code, globals, uptodate)
        module = getattr(template.root_render_func, "__globals__", {})
        if _ESCAPE_TEXT is not None and module.get("escape") is escape:
            module["escape"] = _escape
        return template


class _Environment(jinja2.Environment):
    """Jinja's environment with a quicker ``row.field`` on a plain dict.

    Jinja looks for an attribute first and then for the item; a dict has no attribute of
    a name that is not a dict method, so the item is looked up first for those names and
    the answer is Jinja's, without an ``AttributeError`` raised and caught for every
    field of every row.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    template_class = _Template


def _page_gettext(translations: NullTranslations) -> Callable[..., str]:
    """The templates' ``_()`` and ``gettext()``: Jinja's new-style gettext (the translated
    text is markup, the values are escaped into it and ``%`` always formats), with each
    message looked up once per language and without Jinja's second call through the
    context."""
    texts: dict[str, tuple[str, Markup]] = {}
    bare: dict[str, Markup] = {}  # a message without values, as shown

    @jinja2.pass_eval_context
    def gettext(eval_ctx: Any, message: str, /, **values: Any) -> str:
        autoescape = eval_ctx.autoescape
        if autoescape and not values:
            shown = bare.get(message)
            if shown is not None:
                return shown
        known = texts.get(message)
        if known is None:
            text = translations.gettext(message)
            known = (text, Markup(text))
            if len(texts) < MAX_MESSAGES:
                texts[message] = known
        if not autoescape:
            return known[0] % values
        for value in values.values():
            if type(value) is not int:
                return known[1] % values
        shown = Markup(known[0] % values)  # a number needs no escaping
        if not values and len(bare) < MAX_MESSAGES:
            bare[message] = shown
        return shown

    return gettext


def _urlencode(value: Any) -> str:
    """Jinja's ``urlencode``, answering a text that needs no quoting as it is."""
    if type(value) is str and _URL_PLAIN.fullmatch(value):
        return value
    return do_urlencode(value)


class Renderer:
    """Renders the shop's templates in each language (one Jinja environment per
    language, so threads never swap each other's catalog)."""

    def __init__(self, hooks: Any, *, theme_dir: str = "", static_url: Any = None,
                 timezone: str = "Asia/Tokyo") -> None:  # fmt: skip
        self.hooks = hooks
        self.zone = ZoneInfo(timezone)
        folders = [str(Path(theme_dir))] if theme_dir else []
        loader = jinja2.FileSystemLoader([*folders, str(TEMPLATES)])
        self.translations = {lang: load_translations(lang) for lang in LANGUAGES}
        self.envs = {lang: self._env(loader, lang, static_url) for lang in LANGUAGES}

    def _env(self, loader: jinja2.BaseLoader, lang: str, static_url: Any) -> jinja2.Environment:
        env = _Environment(
            loader=loader, autoescape=True, extensions=["jinja2.ext.i18n"],
            trim_blocks=True, lstrip_blocks=True,
        )  # fmt: skip
        env.install_gettext_translations(self.translations[lang], newstyle=True)  # type: ignore[attr-defined]
        env.globals["_"] = env.globals["gettext"] = _page_gettext(self.translations[lang])
        env.filters["money"] = format_money
        env.filters["when"] = self.when
        env.filters["urlencode"] = _urlencode
        env.globals["static"] = static_url or (lambda name: f"/static/{name}")
        env.globals["lang"] = lang
        return env

    def when(self, value: Any, with_time: bool = True) -> str:
        """A moment (epoch seconds or an ISO 8601 string) in the shop's time zone:
        ``2026-12-06 02:46 JST``, or the date alone."""
        if value in (None, ""):
            return ""
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = dt.datetime.fromtimestamp(float(value), dt.UTC)
        local = moment.astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M %Z" if with_time else "%Y-%m-%d")

    def gettext(self, lang: str, message: str, **values: Any) -> str:
        """``message`` in ``lang``, with ``%(name)s`` values filled in."""
        text = self.translations.get(lang, NullTranslations()).gettext(message)
        return text % values if values else text

    def render(self, template: str, context: Mapping[str, Any], lang: str) -> str:
        """The page ``template`` with ``context`` after the ``storefront_context`` filter."""
        values = template_context(self.hooks, template, {**context, "lang": lang})
        return (
            self.envs.get(lang, self.envs[DEFAULT_LANGUAGE]).get_template(template).render(values)
        )
