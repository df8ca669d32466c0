# SPDX-License-Identifier: MIT
"""Windows CPython's AF_HYPERV API in the standard `socket` module, on the
simulator.

CPython on Linux has no AF_HYPERV: it refuses a (vm_id, service_id) address
before any system call ("connect(): bad family"), so no interposer alone can
help. install() adds what Windows CPython (3.12+) has to the `socket` module:

    AF_HYPERV, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, HVSOCKET_CONNECT_TIMEOUT_MAX,
    HVSOCKET_CONNECTED_SUSPEND, HVSOCKET_ADDRESS_FLAG_PASSTHRU (and HVSOCKET_CONTAINER_PASSTHRU,
    HVSOCKET_HIGH_VTL), HV_GUID_ZERO, HV_GUID_WILDCARD, HV_GUID_BROADCAST, HV_GUID_CHILDREN,
    HV_GUID_LOOPBACK, HV_GUID_PARENT (and HV_GUID_SILOHOST, HV_GUID_VSOCK_TEMPLATE)

and replaces socket.socket by a subclass whose AF_HYPERV sockets take and give
(vm_id, service_id) strings (bind, connect, connect_ex, accept, getsockname,
getpeername), raise errors as Windows CPython does (hvsim.errors), and work
with timeouts, selectors and asyncio.

The sockets themselves are libhvsim's, through the interposer
(libhvsim-preload.so, which hvsim-run loads and `python3 -m hvsim run`
starts): the process must run under it, or install() refuses. AF_VSOCK
sockets of the patched module are refused too unless the interposer is there,
so nothing here ever reaches the machine's own vsock.

Differences from Windows that code may notice:
- socket.SOL_SOCKET is Linux's 1, which on an AF_HYPERV socket is
  HV_PROTOCOL_RAW (as in C). getsockopt(SOL_SOCKET, SO_ERROR) right after a
  non-blocking connect (the selectors/asyncio idiom) is answered as SO_ERROR;
  otherwise use WSA_SOL_SOCKET (0xffff) and WSA_SO_* for socket-level options.
- connect_ex returns this platform's errno (errno.EINPROGRESS, not 10035).
"""
import ctypes
import errno as _errno
import os
import select
import socket as _sm
import struct
import uuid

from . import errors

AF_HYPERV = 34
HV_PROTOCOL_RAW = 1
HVSOCKET_CONNECT_TIMEOUT = 0x01
HVSOCKET_CONNECT_TIMEOUT_MAX = 300000
HVSOCKET_CONTAINER_PASSTHRU = 0x02
HVSOCKET_CONNECTED_SUSPEND = 0x04
HVSOCKET_HIGH_VTL = 0x08
HVSOCKET_ADDRESS_FLAG_PASSTHRU = 0x01
WSA_SOL_SOCKET = 0xFFFF
WSA_SO_SNDBUF = 0x1001
WSA_SO_RCVBUF = 0x1002
WSA_SO_ERROR = 0x1007
WSA_SO_TYPE = 0x1008

# Spelled as Windows CPython spells them (socketmodule.c: upper case).
HV_GUID_ZERO = "00000000-0000-0000-0000-000000000000"
HV_GUID_WILDCARD = HV_GUID_ZERO
HV_GUID_BROADCAST = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
HV_GUID_CHILDREN = "90DB8B89-0D35-4F79-8CE9-49EA0AC8B7CD"
HV_GUID_LOOPBACK = "E0E16197-DD56-4A10-9195-5EE7A155A838"
HV_GUID_PARENT = "A42E7CDA-D03F-480C-9CC2-A4DE20ABB878"
HV_GUID_SILOHOST = "36BD0C5C-7276-4223-88BA-7D03B654C568"
HV_GUID_VSOCK_TEMPLATE = "00000000-FACB-11E6-BD58-64006A7986D3"

NAMES = ("AF_HYPERV", "HV_PROTOCOL_RAW", "HVSOCKET_CONNECT_TIMEOUT", "HVSOCKET_CONNECT_TIMEOUT_MAX",
         "HVSOCKET_CONTAINER_PASSTHRU", "HVSOCKET_CONNECTED_SUSPEND", "HVSOCKET_HIGH_VTL",
         "HVSOCKET_ADDRESS_FLAG_PASSTHRU", "HV_GUID_ZERO", "HV_GUID_WILDCARD", "HV_GUID_BROADCAST",
         "HV_GUID_CHILDREN", "HV_GUID_LOOPBACK", "HV_GUID_PARENT", "HV_GUID_SILOHOST", "HV_GUID_VSOCK_TEMPLATE")

SOCKADDR_HV = struct.Struct("<HH16s16s")  # Family, Reserved, VmId, ServiceId (GUIDs in Windows byte order)

_orig_socket = _sm.socket
_libc = None


class NotInterposed(OSError):
    pass


def interposed():
    """True when libhvsim-preload.so is loaded in this process (hvsim-run)."""
    try:
        with open("/proc/self/maps") as f:
            return any("libhvsim-preload" in line for line in f)
    except OSError:
        return False


def _refuse(family):
    what = "AF_HYPERV" if family == AF_HYPERV else "AF_VSOCK"
    e = NotInterposed(_errno.EAFNOSUPPORT,
                      f"{what} sockets are emulated only under the interposer: run the program with "
                      "`python3 -m hvsim run [--vm NAME] program.py` or under hvsim-run "
                      "(this process would otherwise reach the kernel's own socket family)")
    e.winerror = errors.winerror(_errno.EAFNOSUPPORT)
    return e


def libc():
    """The C library's socket calls; under the interposer they are its own."""
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        sl = ctypes.POINTER(ctypes.c_uint32)
        for name, args in (("bind", (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)),
                           ("connect", (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)),
                           ("accept4", (ctypes.c_int, ctypes.c_void_p, sl, ctypes.c_int)),
                           ("getsockname", (ctypes.c_int, ctypes.c_void_p, sl)),
                           ("getpeername", (ctypes.c_int, ctypes.c_void_p, sl)),
                           ("getsockopt", (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, sl))):
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int
        _libc = lib
    return _libc


def _guid(text, what, caller):
    if not isinstance(text, str):
        raise TypeError(f"{caller}(): AF_HYPERV address must be a tuple (vm_id, service_id)")
    try:
        return uuid.UUID(text.strip()).bytes_le if len(text.strip()) == 36 else _bad_guid()
    except ValueError:
        raise ValueError(f"{caller}(): AF_HYPERV address {what} is not a valid UUID string") from None


def _bad_guid():
    raise ValueError


def pack_address(address, caller="connect"):
    """(vm_id, service_id) strings -> SOCKADDR_HV bytes, as Windows CPython parses them."""
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"{caller}(): AF_HYPERV address must be a tuple (vm_id, service_id)")
    return SOCKADDR_HV.pack(AF_HYPERV, 0, _guid(address[0], "vm_id", caller), _guid(address[1], "service_id", caller))


def unpack_address(raw):
    """SOCKADDR_HV bytes -> (vm_id, service_id), lower case as Windows CPython gives them."""
    fam, _res, vm, svc = SOCKADDR_HV.unpack(raw[:SOCKADDR_HV.size])
    return str(uuid.UUID(bytes_le=vm)), str(uuid.UUID(bytes_le=svc))


def _raise_errno(wsa=None):
    err = ctypes.get_errno()
    raise errors.to_exception(err, wsa)


def _wrap_oserror(fn):
    def call(self, *a, **kw):
        if self.family != AF_HYPERV:
            return getattr(_orig_socket, fn.__name__)(self, *a, **kw)
        try:
            return getattr(_orig_socket, fn.__name__)(self, *a, **kw)
        except OSError as e:
            raise errors.from_oserror(e) from None
    call.__name__ = fn.__name__
    call.__doc__ = getattr(_orig_socket, fn.__name__).__doc__
    return call


class socket(_orig_socket):
    """socket.socket with Windows CPython's AF_HYPERV (see the module's text)."""

    __slots__ = ("_hv_connecting",)

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        fam = family.value if hasattr(family, "value") else family
        if fam in (AF_HYPERV, getattr(_sm, "AF_VSOCK", 40)) and fileno is None and not interposed():
            raise _refuse(fam)
        if fam == AF_HYPERV and fileno is None:
            try:
                super().__init__(family, type, proto)
            except OSError as e:
                raise errors.from_oserror(e) from None
        else:
            super().__init__(family, type, proto, fileno)
        self._hv_connecting = False

    # ---- addresses ----------------------------------------------------------------------

    def bind(self, address):
        if self.family != AF_HYPERV:
            return super().bind(address)
        raw = pack_address(address, "bind")
        if libc().bind(self.fileno(), raw, len(raw)) < 0:
            _raise_errno()

    def _connect(self, address):
        """0, or this platform's errno (EINPROGRESS for a pending non-blocking connect)."""
        raw = pack_address(address, "connect")
        fd = self.fileno()
        if libc().connect(fd, raw, len(raw)) == 0:
            return 0
        err = ctypes.get_errno()
        timeout = self.gettimeout()
        if err not in (_errno.EINPROGRESS, _errno.EAGAIN) or timeout == 0.0:
            if err == _errno.EINPROGRESS:
                self._hv_connecting = True
            return err
        # A Python timeout: wait for the verdict as CPython's connect does.
        p = select.poll()
        p.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
        if not p.poll(None if timeout is None else max(0, int(timeout * 1000))):
            raise TimeoutError("timed out")
        return self._so_error()

    def _so_error(self):
        val = ctypes.c_uint32(0)
        ln = ctypes.c_uint32(4)
        if libc().getsockopt(self.fileno(), WSA_SOL_SOCKET, WSA_SO_ERROR, ctypes.byref(val), ctypes.byref(ln)) < 0:
            return ctypes.get_errno()
        self._hv_connecting = False
        return errors.BY_WSA.get(val.value, val.value) if val.value else 0

    def connect(self, address):
        if self.family != AF_HYPERV:
            return super().connect(address)
        err = self._connect(address)
        if err:
            # A non-blocking connect is WSAEWOULDBLOCK on Windows.
            raise errors.to_exception(err, 10035 if err == _errno.EINPROGRESS else None)

    def connect_ex(self, address):
        if self.family != AF_HYPERV:
            return super().connect_ex(address)
        return self._connect(address)

    def _name(self, fn):
        buf = ctypes.create_string_buffer(64)
        ln = ctypes.c_uint32(64)
        if fn(self.fileno(), buf, ctypes.byref(ln)) < 0:
            _raise_errno()
        return unpack_address(buf.raw[:ln.value])

    def getsockname(self):
        if self.family != AF_HYPERV:
            return super().getsockname()
        return self._name(libc().getsockname)

    def getpeername(self):
        if self.family != AF_HYPERV:
            return super().getpeername()
        return self._name(libc().getpeername)

    def accept(self):
        if self.family != AF_HYPERV:
            return super().accept()
        fd = self.fileno()
        timeout = self.gettimeout()
        if timeout:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(max(0, int(timeout * 1000))):
                raise TimeoutError("timed out")
        buf = ctypes.create_string_buffer(64)
        ln = ctypes.c_uint32(64)
        while True:
            nfd = libc().accept4(fd, buf, ctypes.byref(ln), os.O_CLOEXEC)
            if nfd >= 0:
                break
            if ctypes.get_errno() != _errno.EINTR:
                _raise_errno()
        sock = socket(AF_HYPERV, self.type, self.proto, fileno=nfd)
        if _sm.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)
        return sock, unpack_address(buf.raw[:ln.value])

    # ---- options -------------------------------------------------------------------------

    def getsockopt(self, level, optname, buflen=None):
        if self.family == AF_HYPERV and level == _sm.SOL_SOCKET and optname == _sm.SO_ERROR \
                and self._hv_connecting and buflen is None:
            return self._so_error()  # the selectors/asyncio idiom after a non-blocking connect
        if self.family != AF_HYPERV:
            return super().getsockopt(level, optname, *(() if buflen is None else (buflen,)))
        try:
            return super().getsockopt(level, optname, *(() if buflen is None else (buflen,)))
        except OSError as e:
            raise errors.from_oserror(e) from None

    setsockopt = _wrap_oserror(_orig_socket.setsockopt)
    send = _wrap_oserror(_orig_socket.send)
    sendall = _wrap_oserror(_orig_socket.sendall)
    recv = _wrap_oserror(_orig_socket.recv)
    recv_into = _wrap_oserror(_orig_socket.recv_into)
    shutdown = _wrap_oserror(_orig_socket.shutdown)

    def __repr__(self):
        r = super().__repr__()
        if self.family == AF_HYPERV and not getattr(self, "_closed", False):
            r = r.replace("family=34", "family=AF_HYPERV")
        return r


def install(module=_sm, require=True):
    """Add Windows CPython's AF_HYPERV names to the socket module and make
    socket.socket the emulating class. require: refuse outside the interposer."""
    if require and not interposed():
        raise _refuse(AF_HYPERV)
    for name in NAMES:
        setattr(module, name, globals()[name])
    module.socket = socket
    return module
