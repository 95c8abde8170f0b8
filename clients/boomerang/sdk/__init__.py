"""Boomerang's Python SDK: a typed, synchronous client of the control plane.

from boomerang.sdk import Client, NotFound

with Client("127.0.0.1:50051", api_key) as client:
    try:
        flow = client.get_flow(flow_id)
    except NotFound as err:
        print(err.reason)  # "ERROR_REASON_FLOW_NOT_FOUND"
"""

from boomerang.sdk.client import Client
from boomerang.sdk.connections import (
    NO_AUTH,
    api_key_auth,
    basic_auth,
    bearer_auth,
    oauth2_client_credentials,
)
from boomerang.sdk.errors import (
    Aborted,
    AlreadyExists,
    BoomerangError,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from boomerang.sdk.structs import definition_dict, from_struct, to_struct

__all__ = [
    "NO_AUTH",
    "Aborted",
    "AlreadyExists",
    "BoomerangError",
    "Cancelled",
    "Client",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "api_key_auth",
    "basic_auth",
    "bearer_auth",
    "definition_dict",
    "from_struct",
    "oauth2_client_credentials",
    "to_struct",
]
