import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATE_UNSPECIFIED: _ClassVar[VersionState]
    VERSION_STATE_DRAFT: _ClassVar[VersionState]
    VERSION_STATE_DEPLOYED: _ClassVar[VersionState]
    VERSION_STATE_INACTIVE: _ClassVar[VersionState]

class HmacScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HMAC_SCHEME_UNSPECIFIED: _ClassVar[HmacScheme]
    HMAC_SCHEME_PATCHWORKS: _ClassVar[HmacScheme]
    HMAC_SCHEME_STANDARD_WEBHOOKS: _ClassVar[HmacScheme]

class CallbackMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALLBACK_MODE_UNSPECIFIED: _ClassVar[CallbackMode]
    CALLBACK_MODE_SYNC: _ClassVar[CallbackMode]
    CALLBACK_MODE_WEBHOOK: _ClassVar[CallbackMode]

class ApiKeyScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    API_KEY_SCOPE_UNSPECIFIED: _ClassVar[ApiKeyScope]
    API_KEY_SCOPE_FULL: _ClassVar[ApiKeyScope]
    API_KEY_SCOPE_EDGE: _ClassVar[ApiKeyScope]
    API_KEY_SCOPE_RUNNER: _ClassVar[ApiKeyScope]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_RESPONDED: _ClassVar[RunStatus]
    RUN_STATUS_SUCCEEDED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_TIMED_OUT: _ClassVar[RunStatus]

class RunReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_REASON_UNSPECIFIED: _ClassVar[RunReason]
    RUN_REASON_FLOW_FAILED: _ClassVar[RunReason]
    RUN_REASON_NO_CALLBACK: _ClassVar[RunReason]
    RUN_REASON_VERSION_NOT_FOUND: _ClassVar[RunReason]
    RUN_REASON_TIMED_OUT: _ClassVar[RunReason]
    RUN_REASON_RUN_LOST: _ClassVar[RunReason]
    RUN_REASON_CRASHED: _ClassVar[RunReason]
    RUN_REASON_BUDGET_EXPRESSION_STEPS: _ClassVar[RunReason]
    RUN_REASON_BUDGET_VALUE_SIZE: _ClassVar[RunReason]
    RUN_REASON_BUDGET_BUCKET_SIZE: _ClassVar[RunReason]
    RUN_REASON_BUDGET_VARIABLES_SIZE: _ClassVar[RunReason]
    RUN_REASON_BUDGET_CALLBACK_SIZE: _ClassVar[RunReason]
    RUN_REASON_BUDGET_SHAPE_LOG: _ClassVar[RunReason]
    RUN_REASON_COMPANY_BUSY: _ClassVar[RunReason]
    RUN_REASON_RUNNER_DRAINING: _ClassVar[RunReason]
    RUN_REASON_INTERNAL: _ClassVar[RunReason]
    RUN_REASON_IDEMPOTENCY_MISMATCH: _ClassVar[RunReason]
    RUN_REASON_ANSWERS_QUOTA: _ClassVar[RunReason]
VERSION_STATE_UNSPECIFIED: VersionState
VERSION_STATE_DRAFT: VersionState
VERSION_STATE_DEPLOYED: VersionState
VERSION_STATE_INACTIVE: VersionState
HMAC_SCHEME_UNSPECIFIED: HmacScheme
HMAC_SCHEME_PATCHWORKS: HmacScheme
HMAC_SCHEME_STANDARD_WEBHOOKS: HmacScheme
CALLBACK_MODE_UNSPECIFIED: CallbackMode
CALLBACK_MODE_SYNC: CallbackMode
CALLBACK_MODE_WEBHOOK: CallbackMode
API_KEY_SCOPE_UNSPECIFIED: ApiKeyScope
API_KEY_SCOPE_FULL: ApiKeyScope
API_KEY_SCOPE_EDGE: ApiKeyScope
API_KEY_SCOPE_RUNNER: ApiKeyScope
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_RESPONDED: RunStatus
RUN_STATUS_SUCCEEDED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_TIMED_OUT: RunStatus
RUN_REASON_UNSPECIFIED: RunReason
RUN_REASON_FLOW_FAILED: RunReason
RUN_REASON_NO_CALLBACK: RunReason
RUN_REASON_VERSION_NOT_FOUND: RunReason
RUN_REASON_TIMED_OUT: RunReason
RUN_REASON_RUN_LOST: RunReason
RUN_REASON_CRASHED: RunReason
RUN_REASON_BUDGET_EXPRESSION_STEPS: RunReason
RUN_REASON_BUDGET_VALUE_SIZE: RunReason
RUN_REASON_BUDGET_BUCKET_SIZE: RunReason
RUN_REASON_BUDGET_VARIABLES_SIZE: RunReason
RUN_REASON_BUDGET_CALLBACK_SIZE: RunReason
RUN_REASON_BUDGET_SHAPE_LOG: RunReason
RUN_REASON_COMPANY_BUSY: RunReason
RUN_REASON_RUNNER_DRAINING: RunReason
RUN_REASON_INTERNAL: RunReason
RUN_REASON_IDEMPOTENCY_MISMATCH: RunReason
RUN_REASON_ANSWERS_QUOTA: RunReason

class Company(_message.Message):
    __slots__ = ("id", "slug", "name", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    slug: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., slug: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("id", "company", "name", "url_prefix", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    name: str
    url_prefix: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., name: _Optional[str] = ..., url_prefix: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("id", "company", "name", "draft_version", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRAFT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    name: str
    draft_version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., name: _Optional[str] = ..., draft_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FlowVersion(_message.Message):
    __slots__ = ("id", "flow_id", "number", "state", "definition", "has_callback", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    HAS_CALLBACK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    flow_id: str
    number: int
    state: VersionState
    definition: _struct_pb2.Struct
    has_callback: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., flow_id: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., definition: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., has_callback: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("flow_id", "environment_id", "version_id", "version_number", "enabled", "deploy_time")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_TIME_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    environment_id: str
    version_id: str
    version_number: int
    enabled: bool
    deploy_time: _timestamp_pb2.Timestamp
    def __init__(self, flow_id: _Optional[str] = ..., environment_id: _Optional[str] = ..., version_id: _Optional[str] = ..., version_number: _Optional[int] = ..., enabled: _Optional[bool] = ..., deploy_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Callback(_message.Message):
    __slots__ = ("id", "company", "flow_id", "name", "content_type", "timeout_ms", "signature", "url", "create_time", "update_time", "rate_limit_per_minute", "previous_signature_expire_time", "hmac_scheme", "allowed_origins", "mode", "async_after_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SIGNATURE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HMAC_SCHEME_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ASYNC_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    flow_id: str
    name: str
    content_type: str
    timeout_ms: int
    signature: str
    url: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    rate_limit_per_minute: int
    previous_signature_expire_time: _timestamp_pb2.Timestamp
    hmac_scheme: HmacScheme
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    mode: CallbackMode
    async_after_ms: int
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., flow_id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., signature: _Optional[str] = ..., url: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limit_per_minute: _Optional[int] = ..., previous_signature_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hmac_scheme: _Optional[_Union[HmacScheme, str]] = ..., allowed_origins: _Optional[_Iterable[str]] = ..., mode: _Optional[_Union[CallbackMode, str]] = ..., async_after_ms: _Optional[int] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "company", "name", "create_time", "revoke_time", "scope")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    scope: ApiKeyScope
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scope: _Optional[_Union[ApiKeyScope, str]] = ...) -> None: ...

class Quotas(_message.Message):
    __slots__ = ("environments", "flows", "versions_kept", "callbacks", "connections", "definition_bytes", "definition_depth", "runs_in_flight", "answer_bytes", "api_keys")
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_KEPT_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RUNS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_BYTES_FIELD_NUMBER: _ClassVar[int]
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    environments: int
    flows: int
    versions_kept: int
    callbacks: int
    connections: int
    definition_bytes: int
    definition_depth: int
    runs_in_flight: int
    answer_bytes: int
    api_keys: int
    def __init__(self, environments: _Optional[int] = ..., flows: _Optional[int] = ..., versions_kept: _Optional[int] = ..., callbacks: _Optional[int] = ..., connections: _Optional[int] = ..., definition_bytes: _Optional[int] = ..., definition_depth: _Optional[int] = ..., runs_in_flight: _Optional[int] = ..., answer_bytes: _Optional[int] = ..., api_keys: _Optional[int] = ...) -> None: ...

class ShapeLog(_message.Message):
    __slots__ = ("shape_id", "shape_type", "status", "duration_us", "items_in", "items_out", "error")
    SHAPE_ID_FIELD_NUMBER: _ClassVar[int]
    SHAPE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    ITEMS_IN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_OUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    shape_id: str
    shape_type: str
    status: str
    duration_us: int
    items_in: int
    items_out: int
    error: str
    def __init__(self, shape_id: _Optional[str] = ..., shape_type: _Optional[str] = ..., status: _Optional[str] = ..., duration_us: _Optional[int] = ..., items_in: _Optional[int] = ..., items_out: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "company", "flow_id", "version_id", "environment_id", "callback_id", "status", "start_time", "respond_time", "end_time", "response_status", "error", "shapes", "reason", "attempts", "parent_run_id", "notices")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    RESPOND_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PARENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    flow_id: str
    version_id: str
    environment_id: str
    callback_id: str
    status: RunStatus
    start_time: _timestamp_pb2.Timestamp
    respond_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    response_status: int
    error: str
    shapes: _containers.RepeatedCompositeFieldContainer[ShapeLog]
    reason: RunReason
    attempts: int
    parent_run_id: str
    notices: _containers.RepeatedCompositeFieldContainer[RunNotice]
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., flow_id: _Optional[str] = ..., version_id: _Optional[str] = ..., environment_id: _Optional[str] = ..., callback_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., respond_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., response_status: _Optional[int] = ..., error: _Optional[str] = ..., shapes: _Optional[_Iterable[_Union[ShapeLog, _Mapping]]] = ..., reason: _Optional[_Union[RunReason, str]] = ..., attempts: _Optional[int] = ..., parent_run_id: _Optional[str] = ..., notices: _Optional[_Iterable[_Union[RunNotice, _Mapping]]] = ...) -> None: ...

class RunNotice(_message.Message):
    __slots__ = ("shape_id", "level", "message", "time")
    SHAPE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    shape_id: str
    level: str
    message: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, shape_id: _Optional[str] = ..., level: _Optional[str] = ..., message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
