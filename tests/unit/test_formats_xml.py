"""XML payloads (control_plane/engine/formats.py, docs/formats.md): the mapping both ways, safety
against hostile documents, and well-formed output checked with an independent strict parser
(the standard library's namespace-aware ElementTree)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.engine.budgets import BudgetExceeded, Budgets, Meter
from control_plane.engine.formats import (
    FormatError,
    RenderError,
    UnsafeXML,
    parse_by_content_type,
    parse_xml,
    render_xml,
)

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def strict(document: bytes) -> ET.Element:
    """Parses with namespaces checked: an unbound prefix or bad character fails here."""
    return ET.fromstring(document)


ORDER = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment, dropped -->
<order id="7" xmlns:x="urn:x">
  <line sku="A">2</line>
  <line sku="B"/>
  <x:note>a &amp; b &lt;c&gt; &#233;</x:note>
  <empty></empty>
  <blank> </blank>
  <?pi dropped?>
  <code><![CDATA[if (a < b) {}]]></code>
  <mixed>one <b>two</b> three</mixed>
</order>"""


def test_the_documented_mapping():
    assert parse_xml(ORDER) == {
        "order": {
            "@id": "7",
            "@xmlns:x": "urn:x",
            "line": [{"@sku": "A", "#text": "2"}, {"@sku": "B"}],
            "x:note": "a & b <c> é",
            "empty": None,
            "blank": " ",
            "code": "if (a < b) {}",
            "mixed": {"b": "two", "#text": "one  three"},
        }
    }


def test_values_stay_strings_and_a_single_child_is_not_an_array():
    assert parse_xml(b"<r><n>1</n><t>true</t></r>") == {"r": {"n": "1", "t": "true"}}
    assert parse_xml(b"<r><n>1</n><n>2</n><n>3</n></r>") == {"r": {"n": ["1", "2", "3"]}}


def test_the_document_declares_its_own_encoding():
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><r>café</r>'.encode("latin-1")
    assert parse_xml(body) == {"r": "café"}
    assert parse_xml("<r>naïve</r>".encode("utf-16")) == {"r": "naïve"}


def test_render_examples():
    assert render_xml({"order": {"@id": 7, "line": [1, 2], "paid": True, "note": None}}) == (
        DECLARATION + b'<order id="7"><line>1</line><line>2</line><paid>true</paid><note/></order>'
    )
    # The bucket: <payloads> with one <payload> per payload.
    assert render_xml([{"a": 1}, "x", None]) == (
        DECLARATION + b"<payloads><payload><a>1</a></payload><payload>x</payload><payload/>"
        b"</payloads>"
    )
    # Not a single-key object: wrapped in <payload>.
    assert render_xml({"a": 1, "b": 2.5}) == DECLARATION + b"<payload><a>1</a><b>2.5</b></payload>"
    assert render_xml("text") == DECLARATION + b"<payload>text</payload>"
    assert render_xml(None) == DECLARATION + b"<payload/>"
    assert render_xml({"items": [1, 2]}) == (
        DECLARATION + b"<payload><items>1</items><items>2</items></payload>"
    )
    # An array in an array: <item> elements.
    assert render_xml({"m": {"row": [[1, 2], [3]]}}) == (
        DECLARATION + b"<m><row><item>1</item><item>2</item></row><row><item>3</item></row></m>"
    )
    # Attributes and text together; null attributes left out.
    assert render_xml({"p": {"@a": "1", "@b": None, "#text": "t"}}) == (
        DECLARATION + b'<p a="1">t</p>'
    )


def test_namespaced_names_round_trip_and_stay_namespace_well_formed():
    doc = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<soap:Body><m:get xmlns:m="urn:m" m:id="1">x</m:get></soap:Body></soap:Envelope>'
    )
    value = parse_xml(doc)
    assert value["soap:Envelope"]["soap:Body"]["m:get"] == {
        "@xmlns:m": "urn:m",
        "@m:id": "1",
        "#text": "x",
    }
    out = render_xml(value)
    assert out == DECLARATION + doc
    assert strict(out).tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a b": 1}, "'a b' is not an XML name"),
        ({"r": {"1st": 1}}, "r.1st: '1st' is not an XML name"),
        ({"r": {"": 1}}, "r.: '' is not an XML name"),
        ({"r": {"@bad name": 1}}, "r.@bad name"),
        ({"r": {"p:x": 1}}, "the prefix 'p' is not declared"),
        ({"r": {"@p:x": 1}}, "the prefix 'p' is not declared"),
        ({"r": {"@xmlns:p": ""}}, "cannot be undeclared"),
        ({"r": {"@xmlns:p": None}}, "cannot be undeclared"),
        ({"r": {"@xmlns:p": {"u": 1}}}, "a namespace must be a string"),
        ({"r": {"@xmlns:xmlns": "urn:x"}}, "the prefix 'xmlns' is reserved"),
        ({"r": {"@xmlns:xml": "urn:x"}}, "the prefix 'xml' is reserved"),
        ({"r": {"@xmlns": "http://www.w3.org/XML/1998/namespace"}}, "is reserved"),
        ({"r": {"@xmlns:p": "http://www.w3.org/2000/xmlns/"}}, "is reserved"),
        ({"r": {"@xmlns:x": "}"}}, "r.@xmlns:x: a namespace cannot contain '{' or '}'"),
        ({"r": {"@xmlns": "urn:{x"}}, "r.@xmlns: a namespace cannot contain '{' or '}'"),
        (
            {"r": {"@xmlns:a": "urn:u", "@xmlns:b": "urn:u", "@a:x": 1, "@b:x": 2}},
            "r.@b:x: the same attribute as another, by namespace",
        ),
        ({"r": {"@a": {"b": 1}}}, "r.@a: an attribute must be a string"),
        ({"r": {"@a": [1]}}, "r.@a: an attribute must be a string"),
        ({"r": {"#text": {"b": 1}}}, "r.#text: text must be a string"),
        ({"r": {"#other": 1}}, "'#other' is not an XML name"),
    ],
)
def test_what_xml_cannot_carry_fails_naming_the_key(value, where):
    with pytest.raises(RenderError) as caught:
        render_xml(value)
    assert where in str(caught.value)


def test_a_declared_prefix_is_in_scope_below_its_declaration_only():
    out = render_xml({"r": {"a": {"@xmlns:p": "urn:p", "p:x": 1}}})
    assert strict(out).find("a/{urn:p}x").text == "1"
    with pytest.raises(RenderError, match="prefix 'p'"):
        render_xml({"r": {"a": {"@xmlns:p": "urn:p"}, "p:x": 1}})
    assert strict(render_xml({"r": {"@xml:lang": "en"}})).attrib  # xml: is always bound


def test_characters_xml_cannot_carry_become_the_replacement_character():
    out = render_xml({"r": {"@a": "x\x00y", "#text": "bell\x07 \ud800 ok"}})
    root = strict(out)
    assert root.attrib["a"] == "x\ufffdy"
    assert root.text == "bell\ufffd \ufffd ok"


def test_whitespace_and_markup_survive_the_round_trip():
    value = {"r": {"@a": 'tab\tnl\ncr\r "q" <&>', "t": "line\r\nnext ]]> <&>"}}
    out = render_xml(value)
    assert parse_xml(out) == value
    root = strict(out)
    assert root.attrib["a"] == 'tab\tnl\ncr\r "q" <&>'
    assert root.find("t").text == "line\r\nnext ]]> <&>"


# A run's values: JSON, with keys and strings drawn from anything Unicode has.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["urn:u", "http://www.w3.org/XML/1998/namespace"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=5)
            | st.sampled_from(["a", "@a", "#text", "x:y", "@x:y", "@y:y", "@xmlns:x", "@xmlns:y"])
            | st.sampled_from(["@xmlns", "@xmlns:xml", "@xmlns:xmlns", "@xml:lang"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_value_renders_well_formed_or_fails_clearly(value):
    try:
        out = render_xml(value)
    except RenderError:
        return
    strict(out)  # must not raise


# Values in the form parsing gives: they must come back unchanged.
_names = st.sampled_from(["a", "b", "item", "x-y", "z.1", "é"])
_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    ),
    min_size=1,
    max_size=6,
)


def _node(children: st.SearchStrategy) -> st.SearchStrategy:
    attributes = st.dictionaries(_names.map(lambda n: "@" + n), _text, max_size=2)
    elements = st.dictionaries(
        _names, children | st.lists(children, min_size=2, max_size=3), min_size=1, max_size=3
    )
    with_children = st.tuples(attributes, elements, st.none() | _text.map(str.strip)).map(
        lambda t: {**t[0], **t[1], **({"#text": t[2]} if t[2] else {})}
    )
    attributes_only = st.tuples(
        st.dictionaries(_names.map(lambda n: "@" + n), _text, min_size=1, max_size=2),
        st.none() | _text,
    ).map(lambda t: {**t[0], **({"#text": t[1]} if t[1] else {})})
    return with_children | attributes_only


element_values = st.recursive(st.none() | _text, _node, max_leaves=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_names, element_values)
def test_parsed_form_round_trips(name, value):
    document = {name: value}
    out = render_xml(document)
    strict(out)
    assert parse_xml(out) == document


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""

HOSTILE = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    "external DTD": b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>',
    "parameter entity": b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><r/>',
    "plain doctype": b"<!DOCTYPE r><r/>",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_doctypes_and_entities_are_refused(body):
    with pytest.raises(UnsafeXML, match=r"refused.*DOCTYPE"):
        parse_xml(body)
    # Whatever the content type's route, refusal is not a fall back to text.
    with pytest.raises(UnsafeXML):
        parse_by_content_type(body, "application/xml")


@pytest.mark.parametrize(
    "body",
    [b"", b"<r>", b"<r></s>", b"<r/><r/>", b"<r>&undefined;</r>", b"<r a='1' a='2'/>", b"text"],
)
def test_malformed_xml_is_a_format_error_and_otherwise_text(body):
    with pytest.raises(FormatError, match=r"not well-formed: .* at line 1"):
        parse_xml(body)
    assert parse_by_content_type(body, "text/xml") == body.decode()


def test_depth_is_bounded_by_the_budget():
    def nested(depth: int) -> bytes:
        return b"<a>" * depth + b"x" + b"</a>" * depth

    assert parse_xml(nested(64), max_depth=64) is not None
    with pytest.raises(BudgetExceeded, match="nested deeper than 64 levels") as caught:
        parse_xml(nested(65), max_depth=64)
    assert caught.value.budget == "value_size"
    # Far deeper than the interpreter's stack: refused just as cleanly.
    with pytest.raises(BudgetExceeded):
        parse_xml(nested(200_000))


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "text/xml; charset=utf-8", "application/soap+xml", "Application/Atom+XML"],
)
def test_xml_content_types(content_type):
    assert parse_by_content_type(b"<r a='1'/>", content_type) == {"r": {"@a": "1"}}


def test_json_and_text_are_as_before():
    assert parse_by_content_type(b'{"a": 1}', "") == {"a": 1}
    assert parse_by_content_type(b"<r/>", "") == "<r/>"  # no content type: JSON, else text
    assert parse_by_content_type(b"<r/>", "text/plain") == "<r/>"
    assert parse_by_content_type(b"[1]", "application/vnd.x+json") == [1]


def test_render_is_bounded_and_metered():
    value = {"r": {"v": ["x" * 100] * 100}}
    full = render_xml(value)
    assert render_xml(value, limit=len(full)) == full
    with pytest.raises(BudgetExceeded, match="callback body exceeded") as caught:
        render_xml(value, limit=len(full) - 1)
    assert caught.value.budget == "callback_size"
    meter = Meter(Budgets())
    render_xml(value, meter=meter)
    assert meter.run_steps >= 100  # at least one step per element written
