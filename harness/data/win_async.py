# SPDX-License-Identifier: MIT
"""Written for Windows CPython: AF_HYPERV with selectors, timeouts and asyncio
(harness/test_python_compat.py runs it on the simulator through
python3 -m hvsim run). Prints one line per check."""
import asyncio
import errno
import selectors
import socket
import sys

SERVICE = sys.argv[2]
MISSING = "0000dead-facb-11e6-bd58-64006a7986d3"


async def serve():
    srv = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    srv.bind((socket.HV_GUID_WILDCARD, SERVICE))
    srv.listen()
    print("listening", flush=True)

    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line[::-1].strip() + b"|" + writer.get_extra_info("peername")[1].encode() + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    done = asyncio.Event()
    server = await asyncio.start_server(handle, sock=srv)
    async with server:
        await done.wait()
    print("served", flush=True)


async def dial():
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    s.setblocking(False)
    await loop.sock_connect(s, (socket.HV_GUID_PARENT, SERVICE))
    reader, writer = await asyncio.open_connection(sock=s)
    writer.write(b"olleh\n")
    await writer.drain()
    print("asyncio", (await reader.readline()).decode().strip(), flush=True)
    writer.close()
    # A refused non-blocking connect through the event loop.
    s2 = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    s2.setblocking(False)
    try:
        await loop.sock_connect(s2, (socket.HV_GUID_PARENT, MISSING))
        print("asyncio-refused no error")
    except OSError as e:
        print("asyncio-refused", type(e).__name__, e.errno == errno.ECONNREFUSED, flush=True)


def selector_refused():
    """The selectors idiom: non-blocking connect, wait writable, SO_ERROR."""
    s = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    s.setblocking(False)
    try:
        s.connect((socket.HV_GUID_PARENT, MISSING))
        print("selectors connected?!")
        return
    except BlockingIOError as e:
        print("selectors pending", e.winerror, flush=True)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_WRITE)
    sel.select(5)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    print("selectors so_error", errno.errorcode.get(err, err), flush=True)
    s.close()


def timeout_checks():
    s = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    s.settimeout(5)
    try:
        s.connect((socket.HV_GUID_PARENT, MISSING))
    except ConnectionRefusedError as e:
        print("timeout-refused", e.winerror, flush=True)
    s.close()
    bad = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    try:
        bad.connect(("not-a-guid", SERVICE))
    except ValueError as e:
        print("bad-address", e, flush=True)
    try:
        bad.connect("parent")
    except TypeError as e:
        print("bad-type", e, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve())
    else:
        selector_refused()
        timeout_checks()
        asyncio.run(dial())
