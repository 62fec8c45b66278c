"""Every text the pages show in English has its Japanese translation: the templates'
``_()`` strings (the admin pages' too), the resources' ``tr()`` and ``flash()``
messages, the status labels and messages, the checkout form's labels, the admin's texts
and the member errors shown on pages; and every translation takes the values its
message takes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ecshop import members, pages
from ecshop.app import TITLES
from ecshop.render import load_translations
from ecshop.resources import admin_bulk, admin_orders, admin_pages

ROOT = Path(__file__).resolve().parents[1] / "ecshop"
TEMPLATE_TEXT = re.compile(r'_\(\s*"((?:[^"\\]|\\.)*)"')


def _tr_messages(source: str) -> set[str]:
    """The literal message of every ``self.tr(req, "...")`` and ``self.flash(req, "...")``
    call."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
                and node.func.attr in ("tr", "flash") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)):  # fmt: skip
            found.add(node.args[1].value)
    return found


def shown_texts() -> set[str]:
    texts: set[str] = set()
    for template in (ROOT / "templates").rglob("*.html"):
        texts |= set(TEMPLATE_TEXT.findall(template.read_text("utf-8")))
    for module in (ROOT / "resources").glob("*.py"):
        texts |= _tr_messages(module.read_text("utf-8"))
    texts |= set(pages.STATUS_LABELS.values()) | set(pages.ORDER_MESSAGES.values())
    texts |= {f["label"] for f in pages.DEFAULT_CHECKOUT_FIELDS} | set(TITLES.values())
    texts |= set(admin_pages.SHOWN) | set(admin_orders.SHOWN) | set(admin_bulk.SHOWN)
    texts |= {"Use a password of at least 8 characters.", "This password is too long.",
              "An account with this email address already exists."}  # fmt: skip
    return texts


def test_every_shown_text_has_a_japanese_translation():
    ja = load_translations("ja")
    texts = shown_texts()
    assert len(texts) > 90  # the scan found the pages' texts
    missing = sorted(t for t in texts if ja.gettext(t) == t)
    assert missing == []


def test_every_translation_takes_the_values_its_message_takes():
    """Templates format every message (``%(name)s``, and ``%%`` for a percent sign): a
    translation with another placeholder or a lone ``%`` would break its page."""
    ja = load_translations("ja")
    for text in shown_texts():
        names = dict.fromkeys(re.findall(r"%\((\w+)\)s", text), "x")
        assert sorted(re.findall(r"%\((\w+)\)s", ja.gettext(text))) == sorted(names), text
        ja.gettext(text) % names  # raises on a lone % or a missing value


def test_the_member_errors_listed_are_the_ones_raised():
    source = (ROOT / "members.py").read_text("utf-8")
    for text in ("Use a password of at least 8 characters.", "This password is too long.",
                 "An account with this email address already exists."):  # fmt: skip
        assert text in source
    assert members.MIN_PASSWORD == 8
