"""The flow definition format, and its validation. This docstring is the spec.

A flow version's definition is a JSON object holding the shapes run in order::

    {"shapes": [shape, ...]}

No other top-level key is allowed. Every shape has:

- ``id``: required, unique within the flow, matching ``^[a-z0-9][a-z0-9_-]{0,63}$``;
- ``type``: required, one of the types below;
- ``name``: optional display string of at most 200 characters.

A field a shape's type does not define is a violation. The first shape is the only trigger.

Shapes pass a *bucket*, a list of payloads (JSON values), from one to the next. Expressions are
JMESPath (https://jmespath.org/specification.html), evaluated against the object::

    {"payload": <one payload>, "payloads": <the bucket>, "meta": <the request>, "vars": <vars>}

where ``meta`` is ``{"method", "headers": {lowercased name: value, repeats joined by ", "},
"query", "callback_id", "environment_id", "run_id", "company", "flow_id"}``.

Shape types:

``trigger``
    No other field. The bucket becomes ``[first payload]``: a non-empty body is parsed as JSON
    when its Content-Type is absent, ``application/json`` or ``*/*+json``, as XML when it is
    ``application/xml``, ``text/xml`` or ``*/*+xml``, as CSV (a list of row objects) when it is
    ``text/csv`` (docs/formats.md), and is otherwise (or when that fails) its UTF-8 text. XML
    with a DOCTYPE or entities fails the run. An empty body gives the query parameters as an
    object; a name given several times maps to the list of its values.
``manual_payload``
    Exactly one of ``payload`` (any JSON; the bucket becomes ``[payload]``) or ``payloads`` (an
    array; the bucket becomes it).
``map``
    ``expression``: each payload is replaced by the expression's result.
``filter``
    ``condition``: keeps the payloads for which it is truthy by JMESPath rules (anything but
    null, false, "", [] and {}; 0 is true).
``set_variables``
    ``variables``: object of at least one name (``^[A-Za-z_][A-Za-z0-9_]{0,63}$``) to
    expression. All are evaluated with ``payload`` = the first payload (null when the bucket is
    empty) and ``vars`` as before the shape, then stored in ``vars``. The bucket is unchanged.
``callback``
    ``status`` (integer 200-599, default 200; a 1xx cannot be a final answer), ``headers``
    (object of header name to string; Content-Type, Content-Length and Transfer-Encoding are
    refused: the content type is set on the callback and the server frames the body), ``unwrap``
    (boolean, default false), ``render`` (``json``, the default, ``xml``, ``csv`` or ``raw``;
    ``raw`` needs unwrap).
    The first callback reached answers the waiting caller with the bucket as a compact JSON
    array, or with unwrap, its first payload (null when empty), a string being sent as its
    raw UTF-8 text. ``xml`` and ``csv`` write that value as an XML document or CSV rows, and
    ``raw`` sends a string payload as it is (anything else fails the run); docs/formats.md has
    the mapping. The render does not follow the callback's content type: set both. Later
    callbacks answer no one. The bucket is unchanged and the flow goes on.
``wait``
    ``seconds``: number, 0 < seconds <= 300. Pauses the run; the bucket is unchanged.
``connector``
    An HTTP call; its answer becomes the payload. Exactly one of ``connection`` (a name) with
    ``path`` (default ``/``), or ``url`` (absolute http(s), no credentials or fragment).
    ``method`` (GET, POST, PUT, PATCH, DELETE; default GET); ``query`` and ``headers`` (objects
    of at most 50 names to expressions; a null value leaves the entry out, an array repeats a
    query parameter); ``body`` (expression: a string is sent as text, anything else as JSON,
    null sends none); ``timeout_s`` (0 < t <= 60, per attempt; with a connection, at most its
    own); ``retries`` (0-2; connection errors, 429 and 5xx only); ``accept_status`` (statuses
    100-599 that do not fail it besides 2xx); ``per`` (``bucket``: one call, the bucket becomes
    ``[answer]``; ``payload``: one call per payload, at most 1,000); ``output`` (``body``, or
    ``response`` for ``{status, headers, body}``). The answer is read by its Content-Type as the
    trigger reads a body. Spec: ``control_plane.engine.connector``; guide: docs/connector.md.

A shape that raises fails the run; the shapes after it do not run.

Why JMESPath: it has a formal specification with a compliance test suite, and a mature
pure-Python implementation maintained by AWS (it is what ``aws --query`` runs). Expressions
can only select and reshape data: they cannot execute code, loop forever or reach I/O, which
matters as flow authors are not trusted with the process. JSONata is more expressive, but its
Python ports are young and less proven.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from control_plane.domain.errors import echo
from control_plane.domain.validation import unprintable
from control_plane.engine import connector  # noqa: F401 (adds the connector to SHAPE_TYPES)
from control_plane.engine.shapes import SHAPE_TYPES, CallbackShape, Shape, Violations

DEFAULT_DEFINITION: Final[dict[str, Any]] = {"shapes": [{"id": "trigger", "type": "trigger"}]}
"""A new flow's draft: it answers nothing until the author adds a callback."""

_COMMON_FIELDS = frozenset({"id", "type", "name"})
_SHAPE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_MAX_NAME_LENGTH = 200
_MAX_VIOLATIONS = 100


class DefinitionError(ValueError):
    """The document breaks the format; `violations` lists every problem found."""

    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        listed = "; ".join(f"{field}: {what}" for field, what in violations)
        super().__init__(f"invalid flow definition: {listed}")


@dataclass(frozen=True, slots=True)
class Definition:
    """A valid definition, parsed once: its expressions are compiled, ready to run."""

    shapes: tuple[Shape, ...]
    has_callback: bool


def validate_definition(doc: object) -> Definition:
    """Parse a definition being saved; raise DefinitionError listing every violation."""
    errors: Violations = []
    shapes = _parse(doc, errors)
    if errors:
        raise DefinitionError(errors)
    return Definition(
        shapes=tuple(shapes), has_callback=any(isinstance(s, CallbackShape) for s in shapes)
    )


def load_definition(doc: object) -> Definition:
    """Parse a stored definition. Stored ones were validated on save, but checking again is
    cheap (once per flow version) and turns a corrupted row into a clear error."""
    return validate_definition(doc)


def _parse(doc: object, errors: Violations) -> list[Shape]:
    if not isinstance(doc, dict):
        errors.append(("definition", "must be a JSON object"))
        return []
    for key in doc:
        if key != "shapes":
            errors.append((f"definition.{key}", "unknown field"))
    if "shapes" not in doc:
        errors.append(("definition.shapes", "is required"))
        return []
    raw_shapes = doc["shapes"]
    if not isinstance(raw_shapes, list):
        errors.append(("definition.shapes", "must be an array of shapes"))
        return []
    if not raw_shapes:
        errors.append(("definition.shapes", "must start with a trigger shape"))
        return []
    shapes = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_shapes):
        if len(errors) >= _MAX_VIOLATIONS:
            # Enough to act on; listing millions (16 MB of empty shapes) would cost memory.
            errors.append(
                ("definition.shapes", f"not checked from shapes[{index}] on: too many violations")
            )
            break
        shape = _parse_shape(raw, index, first_index, errors)
        if shape is not None:
            shapes.append(shape)
    return shapes


def _parse_shape(
    raw: object, index: int, first_index: dict[str, int], errors: Violations
) -> Shape | None:
    path = f"definition.shapes[{index}]"
    if not isinstance(raw, dict):
        errors.append((path, "must be an object"))
        return None
    found = len(errors)

    shape_id = raw.get("id")
    if "id" not in raw:
        errors.append((f"{path}.id", "is required"))
    elif not isinstance(shape_id, str) or not _SHAPE_ID.fullmatch(shape_id):
        errors.append((f"{path}.id", f"must be a string matching ^{_SHAPE_ID.pattern}$"))
    elif shape_id in first_index:
        first = first_index[shape_id]
        errors.append((f"{path}.id", f"duplicate id {shape_id!r}, already used by shapes[{first}]"))
    else:
        first_index[shape_id] = index

    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > _MAX_NAME_LENGTH:
        errors.append((f"{path}.name", f"must be a string of up to {_MAX_NAME_LENGTH} characters"))
    elif why := unprintable(name):
        errors.append((f"{path}.name", why))

    type_name = raw.get("type")
    shape_type = SHAPE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if "type" not in raw:
        errors.append((f"{path}.type", "is required"))
    elif shape_type is None:
        expected = ", ".join(sorted(SHAPE_TYPES))
        errors.append((f"{path}.type", f"unknown shape type {echo(type_name)}; one of: {expected}"))
    if index == 0 and type_name != "trigger":
        errors.append((f"{path}.type", "the first shape must be the trigger"))
    elif index > 0 and type_name == "trigger":
        errors.append((f"{path}.type", "a flow has one trigger, and it is the first shape"))

    if shape_type is None:
        return None  # without a type, the other fields cannot be judged
    for key in raw:
        if key not in _COMMON_FIELDS and key not in shape_type.FIELDS:
            errors.append((f"{path}.{key}", f"unknown field for a {type_name} shape"))
    fields = shape_type.parse_fields(raw, path, errors)
    if len(errors) > found:
        return None
    return shape_type(id=shape_id, name=name, **fields)
