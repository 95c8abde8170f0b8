import datetime

from boomerang.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncCallbacksRequest(_message.Message):
    __slots__ = ("hello", "ack", "heartbeat")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    hello: SyncHello
    ack: SyncAck
    heartbeat: SyncHeartbeat
    def __init__(self, hello: _Optional[_Union[SyncHello, _Mapping]] = ..., ack: _Optional[_Union[SyncAck, _Mapping]] = ..., heartbeat: _Optional[_Union[SyncHeartbeat, _Mapping]] = ...) -> None: ...

class SyncHello(_message.Message):
    __slots__ = ("edge_id", "epoch", "revision")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    edge_id: str
    epoch: str
    revision: int
    def __init__(self, edge_id: _Optional[str] = ..., epoch: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class SyncAck(_message.Message):
    __slots__ = ("epoch", "revision")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    revision: int
    def __init__(self, epoch: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class SyncHeartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncCallbacksResponse(_message.Message):
    __slots__ = ("epoch", "revision", "snapshot", "callbacks", "deleted_callback_ids", "environments", "deleted_environment_ids", "more", "flows", "deleted_flow_ids")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    DELETED_CALLBACK_IDS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_ENVIRONMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    revision: int
    snapshot: bool
    callbacks: _containers.RepeatedCompositeFieldContainer[CallbackRecord]
    deleted_callback_ids: _containers.RepeatedScalarFieldContainer[str]
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentRecord]
    deleted_environment_ids: _containers.RepeatedScalarFieldContainer[str]
    more: bool
    flows: _containers.RepeatedCompositeFieldContainer[FlowRecord]
    deleted_flow_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[str] = ..., revision: _Optional[int] = ..., snapshot: _Optional[bool] = ..., callbacks: _Optional[_Iterable[_Union[CallbackRecord, _Mapping]]] = ..., deleted_callback_ids: _Optional[_Iterable[str]] = ..., environments: _Optional[_Iterable[_Union[EnvironmentRecord, _Mapping]]] = ..., deleted_environment_ids: _Optional[_Iterable[str]] = ..., more: _Optional[bool] = ..., flows: _Optional[_Iterable[_Union[FlowRecord, _Mapping]]] = ..., deleted_flow_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CallbackRecord(_message.Message):
    __slots__ = ("id", "company", "flow_id", "signature_digests", "content_type", "timeout_ms", "deployments", "rate_limit_per_minute", "previous_signature_digest", "previous_signature_expire_time", "hmac_scheme", "hmac_secret", "allowed_origins", "mode", "async_after_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SIGNATURE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SIGNATURE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HMAC_SCHEME_FIELD_NUMBER: _ClassVar[int]
    HMAC_SECRET_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ASYNC_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    flow_id: str
    signature_digests: _containers.RepeatedScalarFieldContainer[bytes]
    content_type: str
    timeout_ms: int
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentRecord]
    rate_limit_per_minute: int
    previous_signature_digest: bytes
    previous_signature_expire_time: _timestamp_pb2.Timestamp
    hmac_scheme: _resources_pb2.HmacScheme
    hmac_secret: bytes
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    mode: _resources_pb2.CallbackMode
    async_after_ms: int
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., flow_id: _Optional[str] = ..., signature_digests: _Optional[_Iterable[bytes]] = ..., content_type: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., deployments: _Optional[_Iterable[_Union[DeploymentRecord, _Mapping]]] = ..., rate_limit_per_minute: _Optional[int] = ..., previous_signature_digest: _Optional[bytes] = ..., previous_signature_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hmac_scheme: _Optional[_Union[_resources_pb2.HmacScheme, str]] = ..., hmac_secret: _Optional[bytes] = ..., allowed_origins: _Optional[_Iterable[str]] = ..., mode: _Optional[_Union[_resources_pb2.CallbackMode, str]] = ..., async_after_ms: _Optional[int] = ...) -> None: ...

class FlowRecord(_message.Message):
    __slots__ = ("id", "company", "deployments")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentRecord]
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., deployments: _Optional[_Iterable[_Union[DeploymentRecord, _Mapping]]] = ...) -> None: ...

class DeploymentRecord(_message.Message):
    __slots__ = ("environment_id", "version_id", "enabled")
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    environment_id: str
    version_id: str
    enabled: bool
    def __init__(self, environment_id: _Optional[str] = ..., version_id: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class EnvironmentRecord(_message.Message):
    __slots__ = ("id", "company", "url_prefix")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    URL_PREFIX_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    url_prefix: str
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., url_prefix: _Optional[str] = ...) -> None: ...

class ListEdgesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEdgesResponse(_message.Message):
    __slots__ = ("edges",)
    EDGES_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    def __init__(self, edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ...) -> None: ...

class Edge(_message.Message):
    __slots__ = ("edge_id", "epoch", "revision", "connected", "last_seen_time")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    edge_id: str
    epoch: str
    revision: int
    connected: bool
    last_seen_time: _timestamp_pb2.Timestamp
    def __init__(self, edge_id: _Optional[str] = ..., epoch: _Optional[str] = ..., revision: _Optional[int] = ..., connected: _Optional[bool] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
