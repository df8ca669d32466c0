# SPDX-License-Identifier: MIT
"""hvsim for Python: an emulated Hyper-V host for tests, and Windows CPython's
AF_HYPERV API on Linux. Standard library only.

    import hvsim
    with hvsim.Host() as host:                      # hvsimd in a fresh folder
        vm = host.vm("vm1")                         # hvsimctl vm add vm1 -> its JSON (id, cid, ...)
        host.service(5000, "demo")                  # GuestCommunicationServices\\00001388-facb-...
        srv = host.python("server.py", partition="host")        # a Windows-style AF_HYPERV program
        out = host.run(["hvcat", "parent:5000"], partition="vm1", input=b"hi")

    python3 -m hvsim run [--host | --vm NAME] [--dir DIR] program.py [ARG]...   # the launcher
    pytest -p hvsim.pytest_plugin                                               # the fixtures

hvsim.compat is the AF_HYPERV layer (socket.AF_HYPERV, string addresses),
hvsim.errors the error table, hvsim.pytest_plugin the fixtures.
"""
from .host import Host, HostError, find_bin, find_tool  # noqa: F401
from .compat import (AF_HYPERV, HV_PROTOCOL_RAW, HVSOCKET_CONNECT_TIMEOUT, HVSOCKET_CONNECT_TIMEOUT_MAX,  # noqa: F401
                     HVSOCKET_CONNECTED_SUSPEND, HVSOCKET_CONTAINER_PASSTHRU, HVSOCKET_HIGH_VTL,
                     HV_GUID_ZERO, HV_GUID_WILDCARD, HV_GUID_BROADCAST, HV_GUID_CHILDREN, HV_GUID_LOOPBACK,
                     HV_GUID_PARENT, HV_GUID_SILOHOST, HV_GUID_VSOCK_TEMPLATE)

__version__ = "0.2.0"


def service_id(port_or_guid):
    """A service GUID string: a port number P gives the vsock template's
    P-facb-11e6-bd58-64006a7986d3; a GUID string is returned as it is."""
    if isinstance(port_or_guid, int) or str(port_or_guid).isdigit():
        return f"{int(port_or_guid):08x}-facb-11e6-bd58-64006a7986d3"
    return str(port_or_guid)
