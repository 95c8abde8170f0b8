"""Flow definitions as plain dicts, carried in `google.protobuf.Struct`.

Struct has a single number type, a double (it mirrors JSON), so the integers of a definition (a
callback's `status: 200`) come back as floats. Definitions are JSON documents where 200 and 200.0
are the same value, so handing them back to users as ints is lossless and what they wrote.
Integers beyond 2**53 do not survive a Struct; definitions have no use for them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from boomerang.v1 import resources_pb2


def to_struct(doc: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(doc)
    return struct


def integral_floats_to_int(value: Any) -> Any:
    """`value` with every float that holds an integer (7.0) replaced by that int, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_floats_to_int(v) for v in value]
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return integral_floats_to_int(json_format.MessageToDict(struct))


def definition_dict(version: resources_pb2.FlowVersion) -> dict[str, Any]:
    """A version's definition as the dict a user wrote, e.g. {"shapes": [...]}."""
    return from_struct(version.definition)


def message_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data: proto field names, every field present, enums by name.

    The only doubles in Boomerang's messages are Struct numbers, so integral floats become ints.
    """
    return integral_floats_to_int(
        json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
    )
