"""The link encoding is urllib's, only faster: the gateway verifies what the shop signed."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus, urlencode

from hypothesis import given
from hypothesis import strategies as st

from ecshop.sandbox.protocol import canonical_query, quote_value, sign_query, verify_query

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(text)
def test_quote_value_is_quote_plus(value):
    assert quote_value(value) == quote_plus(value)


@given(st.dictionaries(text, text, max_size=8))
def test_canonical_query_is_sorted_urlencode_and_parses_back(fields):
    fields.pop("sig", None)
    query = canonical_query(fields)
    assert query == urlencode(sorted(fields.items()))
    assert dict(parse_qsl(query, keep_blank_values=True)) == fields


@given(st.dictionaries(text, text, max_size=8))
def test_a_signed_link_verifies_and_a_changed_one_does_not(fields):
    fields.pop("sig", None)
    signed = {**fields, "sig": sign_query(fields, "secret")}
    assert verify_query(signed, "secret")
    changed = {**signed, "amount": signed.get("amount", "") + "0"}
    assert not verify_query(changed, "secret")
    assert not verify_query(signed, "other")
