from boomerang.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnswerMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_MODE_UNSPECIFIED: _ClassVar[AnswerMode]
    ANSWER_MODE_WAIT: _ClassVar[AnswerMode]
    ANSWER_MODE_ASYNC: _ClassVar[AnswerMode]
    ANSWER_MODE_WEBHOOK: _ClassVar[AnswerMode]
ANSWER_MODE_UNSPECIFIED: AnswerMode
ANSWER_MODE_WAIT: AnswerMode
ANSWER_MODE_ASYNC: AnswerMode
ANSWER_MODE_WEBHOOK: AnswerMode

class RunFlowRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RunFlowClientEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RunFlowClientEvent, _Mapping]]] = ...) -> None: ...

class RunFlowClientEvent(_message.Message):
    __slots__ = ("run_ref", "start", "cancel", "detach")
    RUN_REF_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    run_ref: int
    start: RunStart
    cancel: RunCancel
    detach: RunDetach
    def __init__(self, run_ref: _Optional[int] = ..., start: _Optional[_Union[RunStart, _Mapping]] = ..., cancel: _Optional[_Union[RunCancel, _Mapping]] = ..., detach: _Optional[_Union[RunDetach, _Mapping]] = ...) -> None: ...

class HttpHeader(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class QueryParam(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class RunStart(_message.Message):
    __slots__ = ("company", "callback_id", "flow_id", "environment_id", "version_id", "method", "headers", "query", "body", "timeout_ms", "idempotency_key", "request_fingerprint", "answer_mode", "content_type")
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_MODE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    company: str
    callback_id: str
    flow_id: str
    environment_id: str
    version_id: str
    method: str
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    query: _containers.RepeatedCompositeFieldContainer[QueryParam]
    body: bytes
    timeout_ms: int
    idempotency_key: str
    request_fingerprint: bytes
    answer_mode: AnswerMode
    content_type: str
    def __init__(self, company: _Optional[str] = ..., callback_id: _Optional[str] = ..., flow_id: _Optional[str] = ..., environment_id: _Optional[str] = ..., version_id: _Optional[str] = ..., method: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., query: _Optional[_Iterable[_Union[QueryParam, _Mapping]]] = ..., body: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., request_fingerprint: _Optional[bytes] = ..., answer_mode: _Optional[_Union[AnswerMode, str]] = ..., content_type: _Optional[str] = ...) -> None: ...

class RunDetach(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunCancel(_message.Message):
    __slots__ = ("caller_status",)
    CALLER_STATUS_FIELD_NUMBER: _ClassVar[int]
    caller_status: int
    def __init__(self, caller_status: _Optional[int] = ...) -> None: ...

class RunFlowResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RunFlowServerEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RunFlowServerEvent, _Mapping]]] = ...) -> None: ...

class RunFlowServerEvent(_message.Message):
    __slots__ = ("run_ref", "accepted", "callback", "outcome", "draining", "detached", "replay")
    RUN_REF_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    run_ref: int
    accepted: RunAccepted
    callback: RunCallback
    outcome: RunOutcome
    draining: RunnerDraining
    detached: RunDetached
    replay: RunReplay
    def __init__(self, run_ref: _Optional[int] = ..., accepted: _Optional[_Union[RunAccepted, _Mapping]] = ..., callback: _Optional[_Union[RunCallback, _Mapping]] = ..., outcome: _Optional[_Union[RunOutcome, _Mapping]] = ..., draining: _Optional[_Union[RunnerDraining, _Mapping]] = ..., detached: _Optional[_Union[RunDetached, _Mapping]] = ..., replay: _Optional[_Union[RunReplay, _Mapping]] = ...) -> None: ...

class RunAccepted(_message.Message):
    __slots__ = ("run_id", "status_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status_token: str
    def __init__(self, run_id: _Optional[str] = ..., status_token: _Optional[str] = ...) -> None: ...

class RunDetached(_message.Message):
    __slots__ = ("status_token",)
    STATUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status_token: str
    def __init__(self, status_token: _Optional[str] = ...) -> None: ...

class RunReplay(_message.Message):
    __slots__ = ("run_id", "answer")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    answer: StoredAnswer
    def __init__(self, run_id: _Optional[str] = ..., answer: _Optional[_Union[StoredAnswer, _Mapping]] = ...) -> None: ...

class StoredAnswer(_message.Message):
    __slots__ = ("callback", "outcome", "queued", "content_type")
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    callback: RunCallback
    outcome: RunOutcome
    queued: RunQueued
    content_type: str
    def __init__(self, callback: _Optional[_Union[RunCallback, _Mapping]] = ..., outcome: _Optional[_Union[RunOutcome, _Mapping]] = ..., queued: _Optional[_Union[RunQueued, _Mapping]] = ..., content_type: _Optional[str] = ...) -> None: ...

class RunQueued(_message.Message):
    __slots__ = ("status_token",)
    STATUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status_token: str
    def __init__(self, status_token: _Optional[str] = ...) -> None: ...

class GetRunAnswerRequest(_message.Message):
    __slots__ = ("company", "status_token")
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    STATUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    company: str
    status_token: str
    def __init__(self, company: _Optional[str] = ..., status_token: _Optional[str] = ...) -> None: ...

class GetRunAnswerResponse(_message.Message):
    __slots__ = ("run_id", "answer")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    answer: StoredAnswer
    def __init__(self, run_id: _Optional[str] = ..., answer: _Optional[_Union[StoredAnswer, _Mapping]] = ...) -> None: ...

class RunCallback(_message.Message):
    __slots__ = ("status_code", "headers", "body")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    body: bytes
    def __init__(self, status_code: _Optional[int] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ...) -> None: ...

class RunOutcome(_message.Message):
    __slots__ = ("status", "error", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.RunStatus
    error: str
    reason: _resources_pb2.RunReason
    def __init__(self, status: _Optional[_Union[_resources_pb2.RunStatus, str]] = ..., error: _Optional[str] = ..., reason: _Optional[_Union[_resources_pb2.RunReason, str]] = ...) -> None: ...

class RunnerDraining(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
