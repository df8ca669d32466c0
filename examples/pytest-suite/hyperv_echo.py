# SPDX-License-Identifier: MIT
"""An echo service over Hyper-V sockets, written for Windows CPython (3.12+):
nothing in it knows about hvsim. On Windows it runs as it is; on Linux, run it
as a partition of the emulated host:

    python3 -m hvsim run --host hyperv_echo.py serve 00005000-facb-11e6-bd58-64006a7986d3
    python3 -m hvsim run --vm vm1 hyperv_echo.py send 00005000-facb-11e6-bd58-64006a7986d3 hello

serve SERVICE [COUNT]   listen on HV_GUID_WILDCARD, answer COUNT (1) clients in upper case
send SERVICE TEXT       dial HV_GUID_PARENT with a 1 s HVSOCKET_CONNECT_TIMEOUT, print the answer;
                        a failed connect prints the exception's class, errno and winerror, exit 3
"""
import socket
import sys


def serve(service, count=1):
    srv = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    srv.bind((socket.HV_GUID_WILDCARD, service))
    srv.listen()
    print("listening", srv.getsockname()[1], flush=True)
    for _ in range(count):
        conn, (vm_id, peer_service) = srv.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.sendall(data.upper())
        print("served", vm_id, flush=True)
    srv.close()


def send(service, text):
    s = socket.socket(socket.AF_HYPERV, socket.SOCK_STREAM, socket.HV_PROTOCOL_RAW)
    s.setsockopt(socket.HV_PROTOCOL_RAW, socket.HVSOCKET_CONNECT_TIMEOUT, 1000)
    try:
        s.connect((socket.HV_GUID_PARENT, service))
    except OSError as e:
        print(f"connect failed: {type(e).__name__} errno={e.errno} winerror={getattr(e, 'winerror', None)}")
        return 3
    with s:
        s.sendall(text.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    print(answer.decode().strip())
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif cmd == "send":
        sys.exit(send(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(f"unknown command {cmd}")
