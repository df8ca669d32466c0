# SPDX-License-Identifier: MIT
"""SOCK_SEQPACKET between a host program and a real Linux guest kernel
(issue 15): the guest's virtio-vsock device is served by hvsim-vhost, which
offers VIRTIO_VSOCK_F_SEQPACKET; the same unmodified C program
(vm-images/vsock-seq.c, plain socket(AF_VSOCK, SOCK_SEQPACKET, 0)) runs in
the guest (static, from the image) and on the host under hvsim-run (built
here, dynamically, so the interposer takes its socket calls).

Both ways, one boot: the host connects to the guest's listener, then the
guest connects to the host's. Each run exchanges messages of 1 byte to
64 KiB both ways and checks their lengths, bytes and boundaries, MSG_TRUNC
(out flag and in flag) and that a message beyond the peer's buffer is
refused; it prints one "SEQ <check> ok|FAIL" line per check and "SEQ PASS"
at the end. Two results are the caller's to check, from the "SEQ info"
lines: the errno of that refusal, EMSGSIZE, but ENOMEM on 6.1 (af_vsock.c
replaced every transport error with ENOMEM until 6.3; libhvsim gives a host
program its host's, and the emulated host runs 6.1), and MSG_EOR, which
must arrive with the message sent with it, both ways. The slow
variant gives the guest a back-end advertising 64 KiB buffers: 64 KiB
messages still cross, 64 KiB + 1 is EMSGSIZE in the guest.

`make test` runs the short test on the default kernel; `make qemu-test`
runs both on each kernel of vm-images/kernels.lock (KERNEL=...).

SAFETY: the host side runs only under hvsim-run (its seccomp filter refuses
kernel AF_VSOCK sockets, and vsock-seq itself refuses to run without it).
"""
import os
import re
import subprocess
import time

import pytest

import qemu

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "vm-images", "vsock-seq.c")
H2G_PORT, G2H_PORT = 6100, 6101
# The emulated host's kernel: libhvsim gives a host program 6.1's answers
# (a partition without a kernel of its own; register_fd, sim/lib/socket.c).
HOST_KERNEL = "6.1"


def virtio_vm():
    """`vm add` arguments for a KVM-style VM of the image's kernel: seqpacket
    exists only on the virtio transport (hv_sock refuses it at connect).
    The Makefile's images: build/vm (6.1), build/vm-6.12, build/vm-newest."""
    name = os.path.basename(os.path.normpath(str(qemu.VM_DIR)))
    kernel = name[3:] if name in ("vm-6.12", "vm-newest") else "6.1"
    return ("--transport", "virtio", "--kernel", kernel)


@pytest.fixture(scope="module")
def vsock_seq(tmp_path_factory):
    """vm-images/vsock-seq.c built for the host, dynamically linked (LD_PRELOAD)."""
    out = tmp_path_factory.mktemp("seq") / "vsock-seq"
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), SRC],
                   check=True, capture_output=True, timeout=120)
    return out


def host_run(daemon, exe, *args):
    """exe as a host program of daemon's world, under hvsim-run."""
    argv = [str(qemu.BIN / "hvsim-run"), "--host", "--dir", daemon.dir, "--", str(exe)] + [str(a) for a in args]
    return subprocess.Popen(argv, env=daemon.env("host"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def too_big_errno(kernel):
    """What a seqpacket send beyond the peer's buffer fails with on kernel
    (docs/reference/vsock-virtio.md 9.2: ENOMEM until c43170b7e157, after 6.1)."""
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", kernel).groups())
    return "ENOMEM" if (major, minor) <= (6, 1) else "EMSGSIZE"


def seq_lines(text):
    return [line for line in text.splitlines() if line.startswith("SEQ ")]


def failed(lines):
    return [line for line in lines if " FAIL" in line]


def finish(proc, guest, timeout):
    """Wait for a host program while keeping the guest's console flowing."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        guest._pump(time.monotonic() + 0.05)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def both_ways(hvsimd, qemu_guest, exe, name, backend_args=(), guest_max=262144, host_max=262144):
    """guest_max: the largest message the guest may send (the back-end's
    buffer); host_max: the host program's (its peer's buffer in libhvsim)."""
    hvsimd.ctl("service", "add", str(G2H_PORT), "seqpacket guest to host")
    host_listener = host_run(hvsimd, exe, "listen", G2H_PORT, host_max)
    hvsimd.wait_listeners(host_listener)
    script = (f"vsock-seq listen {H2G_PORT} {guest_max}; echo \"H2G-EXIT $?\"\n"
              f"vsock-seq connect 2 {G2H_PORT} {guest_max}; echo \"G2H-EXIT $?\"\n")
    g = qemu_guest(script, vsock=True, name=name, append="hvsim.guest=1", backend_args=backend_args,
                   vm_args=virtio_vm())
    g.wait_for(f"SEQ listening {H2G_PORT}", timeout=120)
    host_conn = host_run(hvsimd, exe, "connect", g.vm["cid"], H2G_PORT, host_max)
    rc, out, err = finish(host_conn, g, 120)
    res = g.wait_exit(timeout=180)
    lrc, lout, lerr = finish(host_listener, g, 60)
    guest = seq_lines(res.output)
    qemu.progress(f"kernel {g.kernel}: guest {guest[-1:]}, host connector {seq_lines(out)[-1:]}, "
                  f"host listener {seq_lines(lout)[-1:]}; "
                  f"EOR: {[line for line in guest + seq_lines(out) + seq_lines(lout) if 'eor' in line]}")
    assert "SEQ socket FAIL" not in res.output, res.output
    assert rc == 0 and seq_lines(out)[-1:] == ["SEQ PASS"], f"host -> guest, host side:\n{out}\n{err}"
    assert "H2G-EXIT 0" in res.output, f"host -> guest, guest side: {failed(guest)}\n{res.output}"
    assert lrc == 0 and seq_lines(lout)[-1:] == ["SEQ PASS"], f"guest -> host, host side:\n{lout}\n{lerr}"
    assert "G2H-EXIT 0" in res.output, f"guest -> host, guest side: {failed(guest)}\n{res.output}"
    assert guest.count("SEQ PASS") == 2, res.output
    want = too_big_errno(g.kernel)
    host = seq_lines(out) + seq_lines(lout)
    assert guest.count(f"SEQ info too-big {want}") == 2, f"kernel {g.kernel} should give {want}:\n{res.output}"
    host_want = too_big_errno(HOST_KERNEL)
    assert host.count(f"SEQ info too-big {host_want}") == 2, f"a host of {HOST_KERNEL} gives {host_want}:\n{out}\n{lout}"
    assert guest.count("SEQ info recv-eor MSG_EOR") == 2, f"the host's MSG_EOR did not reach the guest:\n{res.output}"
    assert host.count("SEQ info recv-eor MSG_EOR") == 2, f"the guest's MSG_EOR did not reach the host:\n{out}\n{lout}"
    counters = g.backend.counters()
    return g, counters


@pytest.mark.qemu
def test_seqpacket_is_negotiated(hvsimd, qemu_guest):
    """The guest kernel acknowledges VIRTIO_VSOCK_F_SEQPACKET through QEMU's
    vhost-user-vsock: without it a seqpacket connect fails in the guest with
    ESOCKTNOSUPPORT (no transport allows the type); with it the request
    reaches the back-end, which connects a host seqpacket socket or answers
    RST (ECONNRESET) when nobody listens on the port."""
    g = qemu_guest("vsock-seq connect 2 6199; echo \"EXIT $?\"", vsock=True, name="seqneg",
                   append="hvsim.guest=1", vm_args=virtio_vm(), backend_args=["-v"])
    res = g.wait_exit(timeout=120)
    assert "SEQ connect FAIL Connection reset by peer" in res.output, res.output
    assert "the guest negotiated seqpacket" in g.backend.logs(), g.backend.logs()


@pytest.mark.qemu
def test_seqpacket_messages_both_ways(hvsimd, qemu_guest, vsock_seq):
    g, counters = both_ways(hvsimd, qemu_guest, vsock_seq, "seqboth")
    qemu.progress(f"kernel {g.kernel}: back-end counters {counters}")


@pytest.mark.qemu
@pytest.mark.slow
def test_seqpacket_with_a_64k_guest_facing_buffer(hvsimd, qemu_guest, vsock_seq):
    """The back-end advertises 64 KiB (--buf-size 65536): the guest's largest
    message is 64 KiB, and 64 KiB + 1 fails with EMSGSIZE in the guest."""
    both_ways(hvsimd, qemu_guest, vsock_seq, "seq64k", backend_args=["--buf-size", "65536"], guest_max=65536)
