# SPDX-License-Identifier: MIT
"""libpomai's statuses as exceptions, one class per status.

Each class is named after the status (docs/protocol.md §7 for the server's,
client/pomai.h for the client's own): E_WRONGTYPE is WrongTypeError,
E_SERVER_TIMEOUT is ServerTimeoutError, NOT_FOUND is NotFoundError. They all
derive from PomaiError, which carries the status's number (`status`), its
stable name (`name`, "E_WRONGTYPE") and libpomai's sentence. A status that
libpomai added after this module was written still raises: a PomaiError
whose name comes from libpomai (pm_client_status_name).

Absence is not an error where it is an answer: get() and vget() return
None, delete() returns False.
"""
from ._ffi import ffi, lib


class PomaiError(Exception):
    """A request failed; `status`, `name` say how (pomai.h's enum pm_client_status)."""

    status = None
    name = None

    def __init__(self, status, detail=None):
        self.status = status
        self.name = ffi.string(lib.pm_client_status_name(status)).decode()
        text = ffi.string(lib.pm_client_strerror(status)).decode()
        msg = f"{self.name}: {text}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class ServerError(PomaiError):
    """The server answered with an error status (docs/protocol.md §7)."""


class ClientError(PomaiError):
    """libpomai's own: the request did not get a usable answer, or was refused
    before it was sent."""


# (status name, class name, base): the server's answers, then the client's own.
_TABLE = (
    ("NOT_FOUND", "NotFoundError", ServerError),
    ("E_WRONGTYPE", "WrongTypeError", ServerError),
    ("E_SERVER_NOMEM", "ServerNoMemError", ServerError),
    ("E_EXISTS", "ExistsError", ServerError),
    ("E_KEY_LEN", "KeyLenError", ServerError),
    ("E_VALUE_LEN", "ValueLenError", ServerError),
    ("E_DIM", "DimError", ServerError),
    ("E_NAN", "NanError", ServerError),
    ("E_ZERO_VECTOR", "ZeroVectorError", ServerError),
    ("E_K", "KError", ServerError),
    ("E_EF", "EfError", ServerError),
    ("E_TTL", "TtlError", ServerError),
    ("E_COLLECTION_NAME", "CollectionNameError", ServerError),
    ("E_COLLECTIONS_FULL", "CollectionsFullError", ServerError),
    ("E_PARAM", "ParamError", ServerError),
    ("E_DTYPE", "DtypeError", ServerError),
    ("E_FRAME", "FrameError", ServerError),
    ("E_SERVER_TIMEOUT", "ServerTimeoutError", ServerError),
    ("E_BUSY", "BusyError", ServerError),
    ("E_DISK_FULL", "DiskFullError", ServerError),
    ("E_LOG_FAILED", "LogFailedError", ServerError),
    ("E_SERVER", "InternalServerError", ServerError),
    ("E_THROTTLED", "ThrottledError", ServerError),
    ("E_QUOTA", "QuotaError", ServerError),
    ("E_WORK_LIMIT", "WorkLimitError", ServerError),
    ("E_READONLY", "ReadOnlyError", ServerError),
    ("E_NOREPLICAS", "NoReplicasError", ServerError),
    ("E_MOVED", "MovedError", ServerError),
    ("E_FILTER", "FilterError", ServerError),
    ("E_ATTR", "AttrError", ServerError),
    ("E_BATCH", "BatchError", ServerError),
    # issue 19's statuses (proto/wire.h RETRY 15, AUTH 40, NOPERM 41), under
    # the names libpomai is to give them: until it does, never raised
    ("E_RETRY", "RetryError", ServerError),
    ("E_AUTH", "AuthError", ServerError),
    ("E_NOPERM", "NoPermError", ServerError),
    ("E_TIMEOUT", "ClientTimeoutError", ClientError),
    ("E_CONNECTION", "ClientConnectionError", ClientError),
    ("E_CONFIG", "ConfigError", ClientError),
    ("E_ARG", "ArgError", ClientError),
    ("E_NOSPACE", "NoSpaceError", ClientError),
    ("E_PROTOCOL", "ProtocolError", ClientError),
    ("E_WOULD_BLOCK", "WouldBlockError", ClientError),
    ("E_ALLOC", "AllocError", ClientError),
)

BY_NAME = {}
for _status_name, _cls_name, _base in _TABLE:
    _cls = type(_cls_name, (_base,), {"__doc__": f"status {_status_name}", "__module__": __name__})
    globals()[_cls_name] = _cls
    BY_NAME[_status_name] = _cls

__all__ = ["PomaiError", "ServerError", "ClientError", "BY_NAME", "error"] + [
    c for _, c, _ in _TABLE]


def error(status, detail=None, retry_ms=0):
    """The exception for a status (not raised): its class by libpomai's name."""
    name = ffi.string(lib.pm_client_status_name(status)).decode()
    err = BY_NAME.get(name, PomaiError)(status, detail)
    if retry_ms:
        err.retry_ms = retry_ms
    return err


def check(status, detail=None, retry_ms=0):
    """Raise the exception of a status other than OK."""
    if status != lib.PM_CLIENT_OK:
        raise error(status, detail, retry_ms)
