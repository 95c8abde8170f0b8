"""Finds where a Struct too deep to decode goes too deep, by reading its wire format directly.

protobuf's decoder refuses the whole request past 100 nested messages and says nothing about
where (grpckit/decode.py). To still name the path, as for a definition that decodes but nests
past MAX_STRUCT_DEPTH (grpckit/convert.py), this walks the raw bytes of the Struct field with
the same path syntax and depth count. It descends at most MAX_STRUCT_DEPTH + 1 levels, so its
own recursion is bounded, and it gives up (None) after a bounded number of fields read.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor

from control_plane.grpckit.convert import MAX_STRUCT_DEPTH

MAX_FIELDS_READ = 200_000  # a 16 MB request of tiny entries is not walked to the end
_LEN = 2  # wire type of length-delimited fields


class _GiveUp(Exception):
    pass


def first_too_deep(request: bytes, field: FieldDescriptor) -> str | None:
    """The path (`definition.shapes[1].payload.a…`) of the first object or array of the Struct
    `field` of `request` nested past MAX_STRUCT_DEPTH; None if not found or not readable."""
    budget = [MAX_FIELDS_READ]
    try:
        for number, wire, value in _fields(memoryview(request), budget):
            if number == field.number and wire == _LEN:
                return _struct(value, field.name, 1, budget)
    except (_GiveUp, ValueError, IndexError):
        return None
    return None


def _struct(data: memoryview, path: str, depth: int, budget: list[int]) -> str | None:
    if depth > MAX_STRUCT_DEPTH:
        return path
    for number, wire, entry in _fields(data, budget):
        if number != 1 or wire != _LEN:
            continue  # Struct.fields is field 1
        key, value = "", None
        for n, w, v in _fields(entry, budget):
            if n == 1 and w == _LEN:
                key = bytes(v).decode("utf-8", errors="replace")
            elif n == 2 and w == _LEN:
                value = v
        if value is not None and (found := _value(value, f"{path}.{key}", depth, budget)):
            return found
    return None


def _list(data: memoryview, path: str, depth: int, budget: list[int]) -> str | None:
    if depth > MAX_STRUCT_DEPTH:
        return path
    index = 0
    for number, wire, value in _fields(data, budget):
        if number != 1 or wire != _LEN:
            continue  # ListValue.values is field 1
        if found := _value(value, f"{path}[{index}]", depth, budget):
            return found
        index += 1
    return None


def _value(data: memoryview, path: str, depth: int, budget: list[int]) -> str | None:
    for number, wire, value in _fields(data, budget):
        if wire != _LEN:
            continue
        if number == 5:  # Value.struct_value
            return _struct(value, path, depth + 1, budget)
        if number == 6:  # Value.list_value
            return _list(value, path, depth + 1, budget)
    return None


def _fields(data: memoryview, budget: list[int]) -> Iterator[tuple[int, int, memoryview]]:
    """(field number, wire type, payload) of each field; payload is empty unless wire type 2."""
    i, end = 0, len(data)
    while i < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _GiveUp
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
            yield number, wire, data[0:0]
        elif wire == 1:
            i += 8
            yield number, wire, data[0:0]
        elif wire == 5:
            i += 4
            yield number, wire, data[0:0]
        elif wire == _LEN:
            length, i = _varint(data, i)
            if i + length > end:
                raise ValueError("truncated")
            yield number, wire, data[i : i + length]
            i += length
        else:
            raise ValueError(f"wire type {wire}")


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
