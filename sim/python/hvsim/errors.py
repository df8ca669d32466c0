# SPDX-License-Identifier: MIT
"""The one error table of the Python package: errno <-> Winsock code and
message, as sim/include/hvsim/errmap.h has it (harness/test_python_compat.py
checks that the two agree row for row), and the exception a Windows CPython
program sees for each.

On Windows, CPython raises socket errors as OSError(errno, strerror, None,
winerror): winerror is the Winsock code (WSAGetLastError), errno is the same
code except for the six Winsock codes that are C errno values there (WSAEINTR,
WSAEBADF, WSAEACCES, WSAEFAULT, WSAEINVAL, WSAEMFILE give 4, 9, 13, 14, 22,
24), and the subclass follows that errno (errno.ECONNREFUSED *is* 10061 on
Windows). The emulation raises the same subclass with the same winerror and
Winsock message, and errno set to this platform's constant for the error
(errno.ECONNREFUSED is 111 here), so both `e.winerror == 10061` and
`e.errno == errno.ECONNREFUSED` hold, as they do on Windows.

    python3 -m hvsim errors      # the table (exception class, errno, winerror)
"""
import errno as _errno

# (errno name, Winsock code, Winsock name, message): errmap.h's rows, in order.
ERRNO_MAP = (
    ("EINTR", 10004, "WSAEINTR", "A blocking operation was interrupted by a call to WSACancelBlockingCall."),
    ("EBADF", 10009, "WSAEBADF", "The file handle supplied is not valid."),
    ("EACCES", 10013, "WSAEACCES", "An attempt was made to access a socket in a way forbidden by its access permissions."),
    ("EFAULT", 10014, "WSAEFAULT", "The system detected an invalid pointer address in attempting to use a pointer argument in a call."),
    ("EINVAL", 10022, "WSAEINVAL", "An invalid argument was supplied."),
    ("EMFILE", 10024, "WSAEMFILE", "Too many open sockets."),
    ("EAGAIN", 10035, "WSAEWOULDBLOCK", "A non-blocking socket operation could not be completed immediately."),
    ("EWOULDBLOCK", 10035, "WSAEWOULDBLOCK", "A non-blocking socket operation could not be completed immediately."),
    ("EINPROGRESS", 10036, "WSAEINPROGRESS", "A blocking operation is currently executing."),
    ("EALREADY", 10037, "WSAEALREADY", "An operation was attempted on a non-blocking socket that already had an operation in progress."),
    ("ENOTSOCK", 10038, "WSAENOTSOCK", "An operation was attempted on something that is not a socket."),
    ("EDESTADDRREQ", 10039, "WSAEDESTADDRREQ", "A required address was omitted from an operation on a socket."),
    ("EMSGSIZE", 10040, "WSAEMSGSIZE", "A message sent on a datagram socket was larger than the internal message buffer or some other network limit."),
    ("EPROTOTYPE", 10041, "WSAEPROTOTYPE", "A protocol was specified in the socket function call that does not support the semantics of the socket type requested."),
    ("ENOPROTOOPT", 10042, "WSAENOPROTOOPT", "An unknown, invalid, or unsupported option or level was specified in a getsockopt or setsockopt call."),
    ("EPROTONOSUPPORT", 10043, "WSAEPROTONOSUPPORT", "The requested protocol has not been configured into the system, or no implementation for it exists."),
    ("ESOCKTNOSUPPORT", 10044, "WSAESOCKTNOSUPPORT", "The support for the specified socket type does not exist in this address family."),
    ("EOPNOTSUPP", 10045, "WSAEOPNOTSUPP", "The attempted operation is not supported for the type of object referenced."),
    ("ENOTSUP", 10045, "WSAEOPNOTSUPP", "The attempted operation is not supported for the type of object referenced."),
    ("EPFNOSUPPORT", 10046, "WSAEPFNOSUPPORT", "The protocol family has not been configured into the system or no implementation for it exists."),
    ("EAFNOSUPPORT", 10047, "WSAEAFNOSUPPORT", "An address incompatible with the requested protocol was used."),
    ("EADDRINUSE", 10048, "WSAEADDRINUSE", "Only one usage of each socket address (protocol/network address/port) is normally permitted."),
    ("EADDRNOTAVAIL", 10049, "WSAEADDRNOTAVAIL", "The requested address is not valid in its context."),
    ("ENETDOWN", 10050, "WSAENETDOWN", "A socket operation encountered a dead network."),
    ("ENETUNREACH", 10051, "WSAENETUNREACH", "A socket operation was attempted to an unreachable network."),
    ("ENETRESET", 10052, "WSAENETRESET", "The connection has been broken due to keep-alive activity detecting a failure while the operation was in progress."),
    ("ECONNABORTED", 10053, "WSAECONNABORTED", "An established connection was aborted by the software in your host machine."),
    ("ECONNRESET", 10054, "WSAECONNRESET", "An existing connection was forcibly closed by the remote host."),
    ("ENOBUFS", 10055, "WSAENOBUFS", "An operation on a socket could not be performed because the system lacked sufficient buffer space or because a queue was full."),
    ("EISCONN", 10056, "WSAEISCONN", "A connect request was made on an already connected socket."),
    ("ENOTCONN", 10057, "WSAENOTCONN", "A request to send or receive data was disallowed because the socket is not connected and (when sending on a datagram socket using a sendto call) no address was supplied."),
    ("ESHUTDOWN", 10058, "WSAESHUTDOWN", "A request to send or receive data was disallowed because the socket had already been shut down in that direction with a previous shutdown call."),
    ("EPIPE", 10058, "WSAESHUTDOWN", "Broken pipe: the socket was shut down for sending."),
    ("ETOOMANYREFS", 10059, "WSAETOOMANYREFS", "Too many references to some kernel object."),
    ("ETIMEDOUT", 10060, "WSAETIMEDOUT", "A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond."),
    ("ECONNREFUSED", 10061, "WSAECONNREFUSED", "No connection could be made because the target machine actively refused it."),
    ("EHOSTDOWN", 10064, "WSAEHOSTDOWN", "A socket operation failed because the destination host was down."),
    ("EHOSTUNREACH", 10065, "WSAEHOSTUNREACH", "A socket operation was attempted to an unreachable host."),
    ("ECANCELED", 10103, "WSAECANCELLED", "The operation was canceled."),
    ("ENOMEM", 10055, "WSAENOBUFS", "Out of memory."),
    ("ENOENT", 0, "", "No such object (VM, service or file)."),
    ("ENODEV", 0, "", "No such device: the transport does not offer this socket type."),
    ("EEXIST", 0, "", "The object already exists."),
    ("EPROTO", 0, "", "The emulated host sent a message this library does not understand."),
    ("EPERM", 0, "", "Operation not permitted."),
    ("EIO", 0, "", "Input/output error."),
    ("EDOM", 0, "", "Numerical argument out of domain."),
    ("ERANGE", 0, "", "Numerical result out of range."),
    ("ENAMETOOLONG", 0, "", "File name too long."),
)

# Winsock codes that Windows CPython reports with a C errno (winerror_to_errno).
_WIN_C_ERRNO = {10004: 4, 10009: 9, 10013: 13, 10014: 14, 10022: 22, 10024: 24}

# The OSError subclass Windows CPython picks for a Winsock code (its errno
# table, where errno.ECONNREFUSED etc. are the WSA values).
_WIN_CLASS = {
    10004: InterruptedError, 10013: PermissionError, 10035: BlockingIOError, 10036: BlockingIOError,
    10037: BlockingIOError, 10053: ConnectionAbortedError, 10054: ConnectionResetError,
    10058: BrokenPipeError, 10060: TimeoutError, 10061: ConnectionRefusedError,
}

BY_ERRNO = {}   # this platform's errno value -> (name, winerror, wsa name, message); the first row wins
BY_WSA = {}     # Winsock code -> this platform's errno value; the first row wins
for _name, _wsa, _wsaname, _msg in ERRNO_MAP:
    _val = getattr(_errno, _name, None)
    if _val is None:
        continue
    BY_ERRNO.setdefault(_val, (_name, _wsa, _wsaname, _msg))
    if _wsa:
        BY_WSA.setdefault(_wsa, _val)


def winerror(err):
    """The Winsock code Windows reports for this platform's errno err (0: none)."""
    row = BY_ERRNO.get(err)
    return row[1] if row else 0


def windows_errno(wsa):
    """What e.errno is on Windows CPython for Winsock code wsa."""
    return _WIN_C_ERRNO.get(wsa, wsa)


def exception_class(wsa):
    """The OSError subclass Windows CPython raises for Winsock code wsa."""
    return _WIN_CLASS.get(wsa, OSError)


def to_exception(err, wsa=None):
    """The exception for errno err as Windows CPython raises it: its class, the
    Winsock message as strerror, e.winerror the Winsock code; e.errno is this
    platform's errno (see the module's text). wsa overrides the code (a
    non-blocking connect is WSAEWOULDBLOCK on Windows, EINPROGRESS here)."""
    row = BY_ERRNO.get(err)
    code = wsa if wsa is not None else (row[1] if row else 0)
    if not code:
        import os
        return OSError(err, os.strerror(err))
    msg = next((m for n, c, w, m in ERRNO_MAP if c == code), row[3] if row else "")
    e = exception_class(code)(err, msg)
    e.winerror = code
    return e


def from_oserror(e, wsa=None):
    """An OSError of this platform (errno set) as Windows CPython would raise
    it; anything else (a Python timeout: errno None) is returned as it is."""
    if not isinstance(e, OSError) or e.errno is None or getattr(e, "winerror", None):
        return e
    return to_exception(e.errno, wsa)


def table():
    """Rows (errno name, errno value here, Winsock name, winerror, Windows errno,
    exception class name) for every row with a Winsock code, first rows only."""
    out, seen = [], set()
    for name, wsa, wsaname, _msg in ERRNO_MAP:
        val = getattr(_errno, name, None)
        if not wsa or val is None or val in seen:
            continue
        seen.add(val)
        out.append((name, val, wsaname, wsa, windows_errno(wsa), exception_class(wsa).__name__))
    return out


def table_text():
    rows = [("errno", "value", "winerror", "", "Windows errno", "exception")]
    rows += [(n, str(v), w, str(c), str(we), cls) for n, v, w, c, we, cls in table()]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows)
