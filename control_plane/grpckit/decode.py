"""Requests protobuf cannot decode become INVALID_ARGUMENT instead of UNKNOWN.

grpc decodes a request before any servicer code runs; when that raises (protobuf's decoder stops
at 100 nested messages, about 33 levels of JSON in a google.protobuf.Struct), grpc answers
UNKNOWN with the exception's text, naming protobuf internals. This interceptor gives every
method a decoder that returns an `Undecodable` marker instead of raising, and a behaviour that
answers the marker with a documented INVALID_ARGUMENT (docs/errors.md).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from control_plane.domain.errors import invalid
from control_plane.grpckit.convert import MAX_STRUCT_DEPTH
from control_plane.grpckit.deep import first_too_deep
from control_plane.grpckit.status import to_status

# Message types that can nest without bound: the only way a request gets too deep to decode.
_STRUCT = "google.protobuf.Struct"
_RECURSIVE = {_STRUCT, "google.protobuf.Value", "google.protobuf.ListValue"}


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request the decoder refused."""

    field: str
    description: str
    reason: str = "INVALID_ARGUMENT"


def _nests(message: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if message.full_name in _RECURSIVE:
        return True
    if message.full_name in seen:
        return False
    seen = seen | {message.full_name}
    return any(f.message_type and _nests(f.message_type, seen) for f in message.fields)


def _nesting_fields(message: Descriptor | None) -> list[FieldDescriptor]:
    if message is None:
        return []
    return [f for f in message.fields if f.message_type and _nests(f.message_type)]


def _diagnosis(message: Descriptor | None) -> Undecodable:
    """Names the field that must have been too deep, when the request has exactly one that can
    nest (CreateFlowRequest: `definition`); otherwise the request as a whole."""
    if message is None:
        return Undecodable("request", "is not a valid message")
    deep = _nesting_fields(message)
    if len(deep) == 1:
        return Undecodable(deep[0].name, "nests too deeply to decode")
    return Undecodable("request", f"is not a valid {message.name} (or nests too deeply)")


def _decoder(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    message = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    refused = _diagnosis(message)
    # A top-level Struct field can be walked in the raw bytes for the path (grpckit/deep.py).
    structs = [f for f in _nesting_fields(message) if f.message_type.full_name == _STRUCT]

    def decode(data: bytes) -> object:
        try:
            return parse(data)
        except DecodeError:
            for field in structs:
                if path := first_too_deep(data, field):
                    # Every Struct in the API is a flow definition: refused as the same
                    # definition one level shallower would be (grpckit/convert.py).
                    return Undecodable(
                        path, f"nests deeper than {MAX_STRUCT_DEPTH} levels", "INVALID_DEFINITION"
                    )
            return refused

    return decode


async def _refuse(context: grpc.aio.ServicerContext, request: Undecodable) -> None:
    error = invalid([(request.field, request.description)], request.reason)
    await context.abort_with_status(to_status(error))


async def _checked(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
    async for request in requests:
        if isinstance(request, Undecodable):
            await _refuse(context, request)
        yield request


def _unary(behaviour):
    # grpc picks how to drive a behaviour by its kind (coroutine or async generator function),
    # so the wrapper must be of the same kind as what it wraps.
    if inspect.isasyncgenfunction(behaviour):

        async def stream_out(request, context):
            if isinstance(request, Undecodable):
                await _refuse(context, request)
            async for response in behaviour(request, context):
                yield response

        return stream_out

    async def call(request, context):
        if isinstance(request, Undecodable):
            await _refuse(context, request)
        return await behaviour(request, context)

    return call


def _streaming(behaviour):
    if inspect.isasyncgenfunction(behaviour):

        async def stream_out(requests, context):
            async for response in behaviour(_checked(requests, context), context):
                yield response

        return stream_out

    async def call(requests, context):
        return await behaviour(_checked(requests, context), context)

    return call


class DecodeErrors(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        behaviour = (
            handler.unary_unary
            or handler.unary_stream
            or handler.stream_unary
            or handler.stream_stream
        )
        if not (inspect.iscoroutinefunction(behaviour) or inspect.isasyncgenfunction(behaviour)):
            return handler  # a synchronous servicer (none of ours): left as grpc runs it
        decode = _decoder(handler.request_deserializer)
        serialize = handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary), decode, serialize
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _unary(handler.unary_stream), decode, serialize
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _streaming(handler.stream_unary), decode, serialize
            )
        return grpc.stream_stream_rpc_method_handler(
            _streaming(handler.stream_stream), decode, serialize
        )
