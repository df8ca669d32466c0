# SPDX-License-Identifier: MIT
"""A real Linux guest under QEMU (TCG): the image of vm-images/build.sh boots,
runs a command given on its kernel command line, reports its exit status and
powers off; AF_VSOCK works inside it; with hvsim-vhost it gets a
vhost-user-vsock device.

Run with: /usr/bin/python3 -m pytest -m qemu harness/test_qemu_boot.py
The image comes from $HVSIM_VM_DIR (default build/vm: make vm-image).
"""
import statistics

import pytest

import qemu

qemu_test = pytest.mark.qemu


def run(qemu_guest, cmd, **kw):
    g = qemu_guest(cmd, **kw)
    return g, g.wait_exit()


@qemu_test
def test_boot_runs_command(qemu_guest):
    g, res = run(qemu_guest, "echo hello")
    assert res.code == 0
    assert res.output.splitlines() == ["hello"]
    print(f"boot to ready {res.ready_s:.2f} s, QEMU ran {res.total_s:.2f} s, peak RSS {res.rss_kib} KiB")


@qemu_test
def test_exit_status_stderr_and_quoting(qemu_guest):
    # Quotes, $, newlines and a long-ish line survive the trip through the kernel command line.
    cmd = "x='a b  \"c\" $HOME'\necho \"$x\"\necho to-stderr >&2\nprintf '%s\\n' " + "y" * 300 + "\nexit 7"
    g, res = run(qemu_guest, cmd)
    assert res.code == 7
    assert res.output.splitlines() == ['a b  "c" $HOME', "to-stderr", "y" * 300]


@qemu_test
def test_guest_vsock_loopback_with_socat(qemu_guest):
    # AF_VSOCK inside the guest only (vsock_loopback, CID 1): the modules and
    # the guest's socat with its libraries work. Nothing touches the host's vsock.
    # Without a vsock device the guest's own CID reads 1.
    cmd = ("echo cid=$(vsock-cid); socat -u VSOCK-LISTEN:1234 STDOUT & "
           "for i in $(seq 200); do echo over-vsock | socat -u STDIN VSOCK-CONNECT:1:1234 2>/dev/null && break; "
           "usleep 50000; done; wait")
    g, res = run(qemu_guest, cmd)
    assert res.code == 0
    lines = res.output.splitlines()
    assert "cid=1" in lines and "over-vsock" in lines


def test_hvsimd_fixture(hvsimd):
    st = hvsimd.ctl("status", json_out=True)
    assert st["dir"] == hvsimd.dir and st["pid"] == hvsimd.proc.pid and st["vms"] == 0


def test_command_too_long_is_refused(tmp_path):
    img = qemu.Image(tmp_path / "vmlinuz", tmp_path / "initrd.gz")
    with pytest.raises(ValueError, match="command line"):
        qemu.Guest(tmp_path, img, cmd="x" * 2000).argv()


@qemu_test
def test_vhost_user_vsock_device(hvsimd, qemu_guest):
    # Skips until build/bin/hvsim-vhost exists. The guest must see a virtio
    # vsock device (ID 0x0013) bound to the transport driver, with the VM's CID
    # (the backend's GET_CONFIG answer); QEMU must not report a vhost
    # memory-table failure, and power-off must end QEMU (the backend answered
    # GET_VRING_BASE).
    cmd = ("for d in /sys/bus/virtio/devices/*; do "
           "[ \"$(cat $d/device)\" = 0x0013 ] && echo vsock-device driver=$(basename $(readlink $d/driver)); "
           "done; echo cid=$(vsock-cid)")
    g, res = run(qemu_guest, cmd, vsock=True)
    assert res.code == 0
    lines = res.output.splitlines()
    assert "vsock-device driver=vmw_vsock_virtio_transport" in lines
    assert f"cid={g.vm['cid']}" in lines
    assert [v["cid"] for v in hvsimd.ctl("vm", "list", json_out=True) if v["name"] == g.name] == [g.vm["cid"]]


@qemu_test
@pytest.mark.slow
def test_boot_time_median_of_3(qemu_guest):
    ready, total, rss, cpu = [], [], [], []
    for i in range(3):
        g, res = run(qemu_guest, "true", name=f"timed{i + 1}")
        assert res.code == 0
        ready.append(res.ready_s)
        total.append(res.total_s)
        if res.rss_kib:
            rss.append(res.rss_kib)
        if res.cpu_s is not None:
            cpu.append(res.cpu_s)
        g.stop()
    line = (f"boot to HVSIM-GUEST-READY: median {statistics.median(ready):.2f} s of "
            f"{', '.join(f'{t:.2f}' for t in ready)}; QEMU start to exit median {statistics.median(total):.2f} s"
            + (f" using {statistics.median(cpu):.2f} s CPU" if cpu else "")
            + (f"; QEMU peak RSS median {statistics.median(rss) // 1024:.0f} MiB" if rss else ""))
    qemu.progress(line)
    print(line)
    assert statistics.median(ready) < qemu.BOOT_TIMEOUT
