"""Payload formats: request and response bodies as JSON, XML, CSV or text. The mapping is
documented in docs/formats.md; this module is its implementation and its spec in short.

Parsing (`parse_by_content_type`) follows the Content-Type: JSON (absent, ``application/json``,
``*/*+json``), XML (``application/xml``, ``text/xml``, ``*/*+xml``), CSV (``text/csv``), and
anything else is the body's UTF-8 text. A body that is not well-formed in its type (FormatError)
is taken as text, as JSON always was: Patchworks does not validate payloads against their
content type. What is refused outright, failing the run, is unsafe XML (UnsafeXML: a DOCTYPE,
entity declarations, external references) and a body past the bounds (BudgetExceeded).

XML → data: the root element is kept as the one key of an object, ``{"order": ...}``. An element
with neither attributes nor children is its text (``null`` when empty); otherwise an object with
its attributes as ``"@name"`` keys, its children by name (repeated names become an array in
document order) and its non-blank text, stripped, as ``"#text"``. Names are kept as written,
prefixes included (``"soap:Body"``), and namespace declarations are attributes like any other
(``"@xmlns:soap"``), so that rendering the value gives the same names back. All values are
strings: XML has no types. Comments and processing instructions are dropped.

Data → XML (`render_xml`): the inverse. An object with exactly one key whose value is not an
array is the root; a list (the bucket) is ``<payloads>`` holding one ``<payload>`` per item;
anything else is wrapped in ``<payload>``. An array under a key repeats that key's element; an
array inside an array is an element holding ``<item>`` elements. Scalars are text (``true``,
``false``, numbers as in JSON), null is an empty element, and null attributes are left out.
A name that XML cannot carry, or a prefix no ``@xmlns:p`` declares, fails the render (RenderError,
naming the key); characters XML 1.0 cannot carry (control characters, lone surrogates) become
U+FFFD, and CR is written as ``&#13;`` so that it survives parsing.

CSV (RFC 4180): comma, double-quote quoting with doubled quotes, UTF-8 (a BOM is dropped), the
first row is the header, every row becomes an object of strings, blank lines are skipped, and a
row with a different number of fields than the header is malformed. Rendering writes the union
of the objects' keys as the header (first seen first), CRLF line ends, no BOM; nested values are
written as compact JSON, null as an empty field. Cells starting with ``= + - @`` are written as
they are: a spreadsheet may take them as formulas (docs/formats.md says how to guard).
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.parsers.expat
from functools import lru_cache
from typing import Any, Final, Literal
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from control_plane.engine.budgets import BudgetExceeded, Budgets, Meter

#: Nesting allowed while parsing when no run's budget is given (a run's is checked after).
DEFAULT_MAX_DEPTH: Final = Budgets().max_depth
#: CSV bounds: rows (besides the header), columns, and cells in all.
MAX_CSV_ROWS: Final = 100_000
MAX_CSV_COLUMNS: Final = 1_000
MAX_CSV_CELLS: Final = 1_000_000
#: The largest CSV field: Python's own default, left as it is since the limit is process-wide.
MAX_CSV_FIELD: Final = csv.field_size_limit()

#: `render` values of the callback shape.
RENDERS: Final = ("json", "xml", "csv", "raw")


class FormatError(ValueError):
    """A body is not well-formed in the format its Content-Type names."""


class UnsafeXML(ValueError):
    """An XML body uses what is never processed: a DOCTYPE, entities, external references."""


class RenderError(ValueError):
    """A value cannot be written in the format asked for; the message names where."""


# --- JSON and text ------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259) though Python's parser accepts them; a body that
    # uses them is taken as text rather than carried along to produce invalid JSON later.
    raise ValueError(f"{name} is not JSON")


# Shared instances: json.dumps/loads with non-default arguments build a new coder every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_json(value: Any) -> bytes:
    # "replace": a JSON body may carry lone surrogates ("\ud800"), which UTF-8 cannot encode.
    return _ENCODER.encode(value).encode("utf-8", errors="replace")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(content_type: str) -> bool:
    """application/json or any structured syntax suffix +json (RFC 6839), parameters ignored."""
    media_type = _media_type(content_type)
    return media_type == "application/json" or media_type.endswith("+json")


def is_xml_media_type(content_type: str) -> bool:
    """application/xml, text/xml or any +xml suffix (RFC 7303), parameters ignored."""
    media_type = _media_type(content_type)
    return media_type in ("application/xml", "text/xml") or media_type.endswith("+xml")


def is_csv_media_type(content_type: str) -> bool:
    return _media_type(content_type) == "text/csv"


def text_of(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def parse_by_content_type(body: bytes, content_type: str) -> Any:
    """`body` as a payload, by its Content-Type ("" when there is none: JSON is tried).

    Raises UnsafeXML or BudgetExceeded("value_size"); a body that does not parse is its text."""
    return parse_payload(body, content_type, DEFAULT_MAX_DEPTH)


#: Steps charged per byte parsed: XML and CSV cost ~15 and ~8 times what JSON does (which is
#: not charged), so a body of more than a few KiB is parsed off the event loop (runs/driver.py).
XML_BYTES_PER_STEP: Final = 4
CSV_BYTES_PER_STEP: Final = 8


def parse_payload(
    body: bytes, content_type: str, max_depth: int, meter: Meter | None = None
) -> Any:
    """`parse_by_content_type` with the run's nesting budget (XML is refused past it), charging
    the parsing of XML and CSV to `meter` first."""
    if not content_type or is_json_media_type(content_type):
        try:
            # Strict UTF-8 here (UnicodeDecodeError is a ValueError): JSON must be UTF-8
            # (RFC 8259 §8.1), and a body that is not is better kept as text than altered.
            return _DECODER.decode(body.decode("utf-8"))
        except (ValueError, RecursionError):
            # RecursionError: nested deeper than the parser's stack allows ([[[[...]]]] a few
            # thousand levels deep); like any body that does not parse, it is taken as text.
            pass
    elif is_xml_media_type(content_type):
        if meter is not None:
            meter.charge(len(body) // XML_BYTES_PER_STEP)
        try:
            return parse_xml(body, max_depth=max_depth)
        except FormatError:
            pass
    elif is_csv_media_type(content_type):
        if meter is not None:
            meter.charge(len(body) // CSV_BYTES_PER_STEP)
        try:
            return parse_csv(body)
        except FormatError:
            pass
    return text_of(body)


# --- XML ----------------------------------------------------------------------------------------


class _Element:
    __slots__ = ("has_children", "node", "text")

    def __init__(self, node: dict[str, Any] | None) -> None:
        self.node = node  # attributes and children; None while it has neither
        self.text: list[str] = []
        self.has_children = False


class _Builder(ContentHandler):
    """Builds the value as the SAX events come, with a stack rather than recursion."""

    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.stack: list[_Element] = []
        self.root: Any = None

    def startElement(self, name: str, attrs: Any) -> None:
        # An element at depth d is at least d levels deep in the value, so this only refuses
        # what the run's depth budget would refuse anyway, before building it.
        if len(self.stack) >= self.max_depth:
            raise BudgetExceeded(
                "value_size", f"the XML body is nested deeper than {self.max_depth} levels"
            )
        node = {"@" + key: value for key, value in attrs.items()} if len(attrs) else None
        self.stack.append(_Element(node))

    def characters(self, content: str) -> None:
        self.stack[-1].text.append(content)

    def endElement(self, name: str) -> None:
        element = self.stack.pop()
        text = "".join(element.text)
        node = element.node
        if node is None:
            value: Any = text or None
        else:
            if element.has_children:
                text = text.strip()  # indentation between children is not content
            if text:
                node["#text"] = text
            value = node
        if not self.stack:
            self.root = {name: value}
            return
        parent = self.stack[-1]
        parent.has_children = True
        if parent.node is None:
            parent.node = {}
        siblings = parent.node
        current = siblings.get(name, _MISSING)
        if current is _MISSING:
            siblings[name] = value
        elif type(current) is list:  # a child's own value is never a list: this is a repeat
            current.append(value)
        else:
            siblings[name] = [current, value]


_MISSING: Final = object()


def parse_xml(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """An XML document as data (see the module docstring).

    Raises FormatError (not well-formed), UnsafeXML (a DOCTYPE, entity declarations or external
    references: never processed, so entity expansion cannot happen) or BudgetExceeded (nested
    deeper than `max_depth`)."""
    builder = _Builder(max_depth)
    # defusedxml's expat reader, names as written (no namespace processing), DTDs refused.
    parser = create_parser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(builder)
    try:
        parser.parse(io.BytesIO(body))
    except DefusedXmlException:
        raise UnsafeXML(
            "the XML body was refused: it has a document type declaration (DOCTYPE), entity "
            "declarations or external references, which are never processed"
        ) from None
    except SAXParseException as exc:
        raise FormatError(
            f"the XML body is not well-formed: {exc.getMessage()} at line "
            f"{exc.getLineNumber()}, column {exc.getColumnNumber()}"
        ) from None
    return builder.root


# XML 1.0 (fifth edition) names, without the colon: prefix and local part are each one of these.
_NAME_START = (
    "A-Z_a-z\xc0-\xd6\xd8-\xf6\xf8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c\u200d\u2070-\u218f"
    "\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NCNAME = f"[{_NAME_START}][{_NAME_START}\\-.0-9\xb7\u0300-\u036f\u203f\u2040]*"
_QNAME = re.compile(f"(?:({_NCNAME}):)?{_NCNAME}")
# What XML 1.0 cannot carry at all, even escaped (§2.2 Char).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# In an attribute, whitespace other than a space would be normalised away by the reader.
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
    | {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
_XMLNS_NAMESPACE = "http://www.w3.org/2000/xmlns/"
#: The namespace prefixes in scope, to their names (Namespaces in XML 1.0 §3: `xml` is bound).
Scope = dict[str, str]
_PREDECLARED: Final[Scope] = {"xml": _XML_NAMESPACE}


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _ENCODER.encode(value)  # numbers exactly as JSON writes them


def _text(value: str, escapes: dict[int, str]) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", value).translate(escapes)


class _Writer:
    """Collects output, counting it against `limit` and charging `meter` as it goes."""

    def __init__(self, limit: int | None, meter: Meter | None, what: str) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.meter = meter
        self.what = what

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)  # characters: never more than the bytes they encode to
        if self.meter is not None:
            # ~0.6 µs a piece written in Python (a tag, a text) plus the bytes: see budgets.py.
            self.meter.charge(2 + (len(text) >> 4))
        if self.limit is not None and self.size > self.limit:
            raise BudgetExceeded(
                "callback_size",
                f"the {self.what} callback body exceeded its size budget of {self.limit} bytes",
            )

    def result(self) -> bytes:
        # Lone surrogates are already replaced (XML) or replaced here (CSV), as in JSON.
        return "".join(self.parts).encode("utf-8", errors="replace")


def render_xml(value: Any, *, limit: int | None = None, meter: Meter | None = None) -> bytes:
    """`value` as a UTF-8 XML document (see the module docstring).

    Raises RenderError naming the key at fault, or BudgetExceeded("callback_size") once the
    output passes `limit`."""
    out = _Writer(limit, meter, "XML")
    out.write('<?xml version="1.0" encoding="UTF-8"?>')
    if type(value) is list:
        out.write("<payloads>")
        _children(out, "payload", value, "payloads", _PREDECLARED)
        out.write("</payloads>")
    elif type(value) is dict and len(value) == 1:
        ((name, root),) = value.items()
        if type(root) is list or name.startswith(("@", "#")):
            _element(out, "payload", value, "payload", _PREDECLARED)
        else:
            _element(out, name, root, name, _PREDECLARED)
    else:
        _element(out, "payload", value, "payload", _PREDECLARED)
    return out.result()


def _children(out: _Writer, name: str, value: Any, path: str, scope: Scope) -> None:
    """`value` under the key `name`: one element, or one per item of an array."""
    if type(value) is not list:
        _element(out, name, value, path, scope)
        return
    for index, item in enumerate(value):
        here = f"{path}[{index}]"
        # An array in an array has no name of its own: its items are <item> elements.
        _element(out, name, {"item": item} if type(item) is list else item, here, scope)


def _element(out: _Writer, name: str, value: Any, path: str, scope: Scope) -> None:
    if type(value) is not dict:
        _check_name(name, path, scope)
        if value is None:
            out.write(f"<{name}/>")
        elif isinstance(value, list):
            raise RenderError(f"{path}: an array cannot be an element here")
        else:
            out.write(f"<{name}>{_text(_scalar_text(value), _TEXT_ESCAPES)}</{name}>")
        return
    attributes, children, text = [], [], None
    for key, item in value.items():
        if key.startswith("@"):
            attributes.append((key[1:], item))
            if key == "@xmlns" or key.startswith("@xmlns:"):
                scope = _declare(key[1:], item, f"{path}.{key}", scope)
        elif key == "#text":
            text = item
        else:
            children.append((key, item))
    _check_name(name, path, scope)
    out.write(f"<{name}")
    expanded: set[tuple[str, str]] = set()
    for attribute, item in attributes:
        here = f"{path}.@{attribute}"
        if attribute != "xmlns" and not attribute.startswith("xmlns:"):
            prefix = _check_name(attribute, here, scope)
            if prefix is not None:
                # Two prefixes bound to one namespace would make these one attribute, twice.
                local = (scope[prefix], attribute[len(prefix) + 1 :])
                if local in expanded:
                    raise RenderError(f"{here}: the same attribute as another, by namespace")
                expanded.add(local)
        if item is None:
            continue
        if isinstance(item, dict | list):
            raise RenderError(f"{here}: an attribute must be a string, number or boolean")
        out.write(f' {attribute}="{_text(_scalar_text(item), _ATTR_ESCAPES)}"')
    if text is None and not children:
        out.write("/>")
        return
    out.write(">")
    if text is not None:
        if isinstance(text, dict | list):
            raise RenderError(f"{path}.#text: text must be a string, number or boolean")
        out.write(_text(_scalar_text(text), _TEXT_ESCAPES))
    for key, item in children:
        _children(out, key, item, f"{path}.{key}", scope)
    out.write(f"</{name}>")


def _declare(attribute: str, uri: Any, path: str, scope: Scope) -> Scope:
    """The scope with the declaration `attribute` (xmlns or xmlns:p) = `uri` added."""
    if _name_prefix(attribute) is False:
        raise RenderError(f"{path}: {attribute!r} is not an XML name")
    if isinstance(uri, dict | list):
        raise RenderError(f"{path}: a namespace must be a string")
    uri = "" if uri is None else _scalar_text(uri)
    if uri in (_XML_NAMESPACE, _XMLNS_NAMESPACE):
        raise RenderError(f"{path}: {uri!r} is reserved and cannot be declared")
    if "{" in uri or "}" in uri:
        # Never in a URI (RFC 3986), and namespace-aware readers that name elements
        # `{namespace}local` (ElementTree, lxml) refuse the document or misread it.
        raise RenderError(f"{path}: a namespace cannot contain '{{' or '}}'")
    if attribute == "xmlns":
        return scope
    prefix = attribute[6:]
    if prefix in ("xml", "xmlns"):
        raise RenderError(f"{path}: the prefix {prefix!r} is reserved and cannot be declared")
    if not uri:
        raise RenderError(f"{path}: a namespace prefix cannot be undeclared")
    return {**scope, prefix: uri}


def _check_name(name: str, path: str, scope: Scope) -> str | None:
    """Returns the name's prefix, if any, after checking that it can be written here."""
    prefix = _name_prefix(name)
    if prefix is False:
        raise RenderError(f"{path}: {name!r} is not an XML name")
    if prefix is not None and prefix not in scope:
        raise RenderError(
            f'{path}: the prefix {prefix!r} is not declared (add an "@xmlns:{prefix}" key)'
        )
    return prefix


@lru_cache(maxsize=4096)  # a flow's answers use the same few names over and over
def _name_prefix(name: str) -> str | Literal[False] | None:
    """The prefix of a name XML can carry (None when it has none), or False.

    The pattern is XML 1.0's fifth edition; expat, like many parsers, still follows the fourth,
    whose letters are fewer. A name must suit both, so that every reader takes the output."""
    match = _QNAME.fullmatch(name)
    if match is None:
        return False
    try:
        xml.parsers.expat.ParserCreate().Parse(f"<{name}/>", True)
    except xml.parsers.expat.ExpatError:
        return False
    return match.group(1)


# --- CSV ----------------------------------------------------------------------------------------


def parse_csv(body: bytes) -> list[dict[str, str]]:
    """A CSV document (RFC 4180, header row first) as a list of objects of strings.

    Raises FormatError (not UTF-8, bad quoting, duplicate header names, a row whose
    length differs from the header's) or BudgetExceeded("value_size") past the bounds."""
    try:
        text = body.decode("utf-8-sig")  # drops a BOM, which spreadsheets like to write
    except UnicodeDecodeError:
        raise FormatError("the CSV body is not UTF-8") from None
    # newline="": line breaks inside quoted fields are the field's own (the csv module's rule).
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    cells = 0
    try:
        for fields in reader:
            if not fields:
                continue  # a blank line
            if header is None:
                if len(fields) > MAX_CSV_COLUMNS:
                    raise _csv_bound(f"has more than {MAX_CSV_COLUMNS} columns")
                if len(set(fields)) != len(fields):
                    raise FormatError("the CSV header names a column more than once")
                header = fields
                continue
            if len(fields) != len(header):
                raise FormatError(
                    f"the CSV body's line {reader.line_num} has {len(fields)} fields; "
                    f"the header has {len(header)}"
                )
            if len(rows) >= MAX_CSV_ROWS:
                raise _csv_bound(f"has more than {MAX_CSV_ROWS} rows")
            cells += len(fields)
            if cells > MAX_CSV_CELLS:
                raise _csv_bound(f"has more than {MAX_CSV_CELLS} cells")
            rows.append(dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise _csv_bound(f"has a field longer than {MAX_CSV_FIELD} characters") from None
        raise FormatError(f"the CSV body is malformed at line {reader.line_num}: {exc}") from None
    return rows


def _csv_bound(what: str) -> BudgetExceeded:
    return BudgetExceeded("value_size", f"the CSV body {what}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _ENCODER.encode(value)
    return _scalar_text(value)


def render_csv(value: Any, *, limit: int | None = None, meter: Meter | None = None) -> bytes:
    """Rows as a UTF-8 CSV document: a list of objects (or one object) under a header, or a
    list of arrays as they are; null is no rows at all.

    Raises RenderError for anything else (naming the item), or BudgetExceeded("callback_size")
    once the output passes `limit`."""
    rows = value if type(value) is list else [] if value is None else [value]
    out = _Writer(limit, meter, "CSV")
    writer = csv.writer(_Sink(out), lineterminator="\r\n")  # the excel dialect: RFC 4180
    if all(type(row) is dict for row in rows):
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        if rows:
            writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
    elif all(type(row) is list for row in rows):
        for row in rows:
            writer.writerow([_cell(item) for item in row])
    else:
        first = type(rows[0]) if type(rows[0]) in (dict, list) else dict
        index = next(i for i, row in enumerate(rows) if type(row) is not first)
        raise RenderError(
            f"row {index + 1} is {_kind(rows[index])}: CSV rows must be all objects (under a "
            "header) or all arrays"
        )
    return out.result()


class _Sink:
    """The file the csv writer writes to: straight into the counted output."""

    __slots__ = ("write",)

    def __init__(self, out: _Writer) -> None:
        self.write = out.write


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a scalar"
