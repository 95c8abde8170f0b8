import datetime

from boomerang.v1 import resources_pb2 as _resources_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTENT_TYPE_UNSPECIFIED: _ClassVar[ContentType]
    CONTENT_TYPE_JSON: _ClassVar[ContentType]
    CONTENT_TYPE_XML: _ClassVar[ContentType]
    CONTENT_TYPE_TEXT: _ClassVar[ContentType]
    CONTENT_TYPE_CUSTOM: _ClassVar[ContentType]
CONTENT_TYPE_UNSPECIFIED: ContentType
CONTENT_TYPE_JSON: ContentType
CONTENT_TYPE_XML: ContentType
CONTENT_TYPE_TEXT: ContentType
CONTENT_TYPE_CUSTOM: ContentType

class CreateCallbackRequest(_message.Message):
    __slots__ = ("flow_id", "name", "content_type", "custom_content_type", "timeout_ms", "rate_limit_per_minute")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    name: str
    content_type: ContentType
    custom_content_type: str
    timeout_ms: int
    rate_limit_per_minute: int
    def __init__(self, flow_id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[_Union[ContentType, str]] = ..., custom_content_type: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., rate_limit_per_minute: _Optional[int] = ...) -> None: ...

class CreateCallbackResponse(_message.Message):
    __slots__ = ("callback",)
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    callback: _resources_pb2.Callback
    def __init__(self, callback: _Optional[_Union[_resources_pb2.Callback, _Mapping]] = ...) -> None: ...

class GetCallbackRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetCallbackResponse(_message.Message):
    __slots__ = ("callback",)
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    callback: _resources_pb2.Callback
    def __init__(self, callback: _Optional[_Union[_resources_pb2.Callback, _Mapping]] = ...) -> None: ...

class ListCallbacksRequest(_message.Message):
    __slots__ = ("flow_id", "page_size", "page_token")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    page_size: int
    page_token: str
    def __init__(self, flow_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCallbacksResponse(_message.Message):
    __slots__ = ("callbacks", "next_page_token")
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    callbacks: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Callback]
    next_page_token: str
    def __init__(self, callbacks: _Optional[_Iterable[_Union[_resources_pb2.Callback, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteCallbackRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCallbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegenerateSignatureRequest(_message.Message):
    __slots__ = ("id", "wait_for_edges_ms", "grace_period")
    ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_EDGES_MS_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    wait_for_edges_ms: int
    grace_period: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., wait_for_edges_ms: _Optional[int] = ..., grace_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RegenerateSignatureResponse(_message.Message):
    __slots__ = ("callback", "pending_edge_ids")
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    PENDING_EDGE_IDS_FIELD_NUMBER: _ClassVar[int]
    callback: _resources_pb2.Callback
    pending_edge_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, callback: _Optional[_Union[_resources_pb2.Callback, _Mapping]] = ..., pending_edge_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateCallbackRequest(_message.Message):
    __slots__ = ("id", "name", "content_type", "custom_content_type", "timeout_ms", "update_mask", "rate_limit_per_minute", "hmac_scheme", "hmac_secret", "allowed_origins", "mode", "async_after_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    HMAC_SCHEME_FIELD_NUMBER: _ClassVar[int]
    HMAC_SECRET_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ASYNC_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    content_type: ContentType
    custom_content_type: str
    timeout_ms: int
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    rate_limit_per_minute: int
    hmac_scheme: _resources_pb2.HmacScheme
    hmac_secret: str
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    mode: _resources_pb2.CallbackMode
    async_after_ms: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[_Union[ContentType, str]] = ..., custom_content_type: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., update_mask: _Optional[_Iterable[str]] = ..., rate_limit_per_minute: _Optional[int] = ..., hmac_scheme: _Optional[_Union[_resources_pb2.HmacScheme, str]] = ..., hmac_secret: _Optional[str] = ..., allowed_origins: _Optional[_Iterable[str]] = ..., mode: _Optional[_Union[_resources_pb2.CallbackMode, str]] = ..., async_after_ms: _Optional[int] = ...) -> None: ...

class UpdateCallbackResponse(_message.Message):
    __slots__ = ("callback",)
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    callback: _resources_pb2.Callback
    def __init__(self, callback: _Optional[_Union[_resources_pb2.Callback, _Mapping]] = ...) -> None: ...

class GetCallbackUrlRequest(_message.Message):
    __slots__ = ("id", "environment_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    environment_id: str
    def __init__(self, id: _Optional[str] = ..., environment_id: _Optional[str] = ...) -> None: ...

class GetCallbackUrlResponse(_message.Message):
    __slots__ = ("url", "environment_url")
    URL_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    environment_url: str
    def __init__(self, url: _Optional[str] = ..., environment_url: _Optional[str] = ...) -> None: ...
