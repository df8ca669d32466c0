# SPDX-License-Identifier: MIT
"""QEMU guests for the pytest harness (fixtures in conftest.py).

A guest is Debian's cloud kernel with the initramfs of vm-images/build.sh,
booted under software emulation (-accel tcg, q35, memfd memory shared so a
vhost-user backend can map it). The guest runs one command given at boot and
powers off; its console (the QEMU stdout pipe) is read with select() against
a deadline and copied to a log file. Nothing here sleeps to synchronise.

    g = Guest(workdir, image, cmd="echo hello")
    g.start()
    g.wait_ready()            # HVSIM-GUEST-READY on the console
    res = g.wait_exit()       # HVSIM-GUEST-EXIT <code>, then QEMU's exit
    res.code, res.output      # the command's exit status and console output

With vsock_socket=PATH the guest gets `-device vhost-user-vsock-pci` on that
unix socket; the backend (build/bin/hvsim-vhost, see Backend) must listen
there first. QEMU printing any of FATAL_QEMU is a failure: the guest would
boot and show the device while its data path is dead.

Safety: nothing in this file opens an AF_VSOCK socket on the host. AF_VSOCK
is used only inside the guest.
"""
import base64
import codecs
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
VM_DIR = Path(os.environ.get("HVSIM_VM_DIR") or REPO / "build" / "vm")
QEMU = os.environ.get("HVSIM_QEMU") or "qemu-system-x86_64"
BOOT_TIMEOUT = float(os.environ.get("HVSIM_QEMU_BOOT_TIMEOUT") or 60)  # a bound for hangs, never a wait
EXIT_TIMEOUT = 30
MEM = "512M"
KERNEL_ARGS = "console=ttyS0 quiet panic=-1"
GUESTFWD_ADDR = "10.0.2.100"  # where the guest finds the guestfwd forwards
CMDLINE_MAX = 2047  # x86 COMMAND_LINE_SIZE less the NUL

READY_RE = re.compile(r"^HVSIM-GUEST-READY[ \t]*$", re.M)
EXIT_RE = re.compile(r"^HVSIM-GUEST-EXIT (-?\d+)[ \t]*$", re.M)
INIT_FAILED_RE = re.compile(r"^HVSIM-GUEST-INIT-FAILED (.*)$", re.M)
KERNEL_RE = re.compile(r"hvsim-guest: (\S+), modules loaded")  # vm-images/init, before READY
# The only vsock device QEMU is ever given: the vhost-user one, served by
# hvsim-vhost in user space. The kernel's vhost-vsock (vhost-vsock-pci,
# vhost-vsock-device, /dev/vhost-vsock) would reach this machine's own vsock,
# which belongs to its infrastructure: check_argv refuses it.
VSOCK_DEVICE = "vhost-user-vsock-pci,chardev=vc"
FORBIDDEN_RE = re.compile(r"(^|[,=\s])(vhost-vsock[\w-]*)|/dev/vhost-vsock|vhostfd=")


def check_argv(argv):
    """GuestError unless every vsock device in a QEMU command line is a
    vhost-user one (harness/test_qemu_cmdline.py checks every command line
    the project builds against this)."""
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if prev == "-append":
            continue  # the guest kernel's command line configures no QEMU device
        if FORBIDDEN_RE.search(arg):
            raise GuestError(f"refusing QEMU argument {arg!r}: the kernel's vhost-vsock would reach this "
                             "machine's own vsock; only vhost-user-vsock devices are allowed")
        if prev in ("-device", "-global") and "vsock" in arg.split(",")[0] and \
                not arg.split(",")[0].startswith("vhost-user-vsock"):
            raise GuestError(f"refusing QEMU device {arg!r}: only vhost-user-vsock devices are allowed")
    return True


FATAL_QEMU = ("vhost_set_mem_table failed", "Error starting vhost", "Failed initializing vhost-user memory map")


def _stderr_progress(msg):
    print(f"[qemu] {msg}", file=sys.stderr, flush=True)


progress = _stderr_progress  # conftest.py replaces it with one that prints past pytest's capture


def set_progress(fn):
    global progress
    progress = fn or _stderr_progress


class GuestError(AssertionError):
    """The guest or QEMU failed; an AssertionError so pytest reports a failure."""


@dataclass
class Image:
    vmlinuz: Path
    initrd: Path


def find_image(vm_dir=None):
    """The built image, or None with the reason it is missing."""
    d = Path(vm_dir or VM_DIR)
    img = Image(d / "vmlinuz", d / "initrd.gz")
    if not img.vmlinuz.is_file() or not img.initrd.is_file():
        return None, (f"no guest image in {d} (vmlinuz, initrd.gz): build it with `make vm-image` "
                      f"or `vm-images/build.sh {d}`, or point HVSIM_VM_DIR at one")
    return img, None


def find_qemu():
    path = shutil.which(QEMU)
    if not path:
        return None, f"{QEMU} not found: install qemu-system-x86 (vm-images/build.sh does)"
    return path, None


def guest_kernel(console):
    """The guest's kernel release (uname -r) from its console, or None."""
    m = KERNEL_RE.search(console or "")
    return m.group(1) if m else None


def tail(path, lines=100):
    try:
        text = Path(path).read_text(errors="replace").replace("\r", "")
    except OSError:
        return f"({path}: no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class GuestResult:
    code: int          # the command's exit status (HVSIM-GUEST-EXIT)
    output: str        # console lines between the two markers, without \r
    ready_s: float     # QEMU start to HVSIM-GUEST-READY
    total_s: float     # QEMU start to QEMU exit
    qemu_rc: int
    rss_kib: int       # QEMU's peak resident set (from wait4), or None
    cpu_s: float       # QEMU's user + system CPU time (from wait4), or None


class Guest:
    """One QEMU process. start(), then wait_ready()/wait_for()/wait_exit(); stop() always."""

    def __init__(self, workdir, image, cmd=None, vsock_socket=None, name="guest", mem=MEM, append="",
                 extra_args=(), net=None, resettable=False):
        self.workdir = Path(workdir)
        self.image = image
        self.cmd = cmd
        self.vsock_socket = str(vsock_socket) if vsock_socket else None
        self.name = name
        self.mem = mem
        self.append = append
        self.extra_args = list(extra_args)
        self.net = net  # None: no network; else (guestfwd, hostfwd) lists, see user_net()
        # resettable: a QMP socket, and the vsock device on a hot-pluggable PCIe
        # root port, so transport_reset() can unplug and replug it.
        self.resettable = resettable
        self.qmp_path = self.workdir / f"{name}-qmp.sock" if resettable else None
        self._qmp = None
        self.console_log = self.workdir / f"{name}-console.log"
        self.qemu_log = self.workdir / f"{name}-qemu.log"
        self.proc = None
        self.rss_kib = None
        self.cpu_s = None
        self.started = None
        self.ready_s = None
        self.exited_s = None
        self._fds = {}
        self._console = ""
        self._stderr = ""
        self._dec = {}
        self._files = {}
        self._pidfd = None

    # ---- command line -----------------------------------------------------------------

    def kernel_cmdline(self):
        parts = [KERNEL_ARGS]
        if self.append:
            parts.append(self.append)
        if self.cmd is not None:
            parts.append("hvsim.cmd=" + base64.b64encode(self.cmd.encode()).decode())
        line = " ".join(parts)
        if len(line) > CMDLINE_MAX:
            raise ValueError(f"kernel command line of {len(line)} bytes is over {CMDLINE_MAX}: "
                             "put a long script into the image (EXTRA_BINS) and run that")
        return line

    def argv(self, qemu=None):
        a = [qemu or QEMU, "-accel", "tcg", "-m", self.mem,
             "-object", f"memory-backend-memfd,id=mem,size={self.mem},share=on",
             "-machine", "q35,memory-backend=mem",
             "-nographic", "-no-reboot"] + self.user_net() + [
             "-serial", "stdio", "-monitor", "none",
             "-kernel", str(self.image.vmlinuz), "-initrd", str(self.image.initrd),
             "-append", self.kernel_cmdline()]
        if self.vsock_socket:
            a += ["-chardev", f"socket,id=vc,path={self.vsock_socket}"]
            if self.resettable:
                a += ["-device", "pcie-root-port,id=rp0,slot=1", "-device", VSOCK_DEVICE + ",bus=rp0,id=vsock0"]
            else:
                a += ["-device", VSOCK_DEVICE]
        if self.resettable:
            a += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        return a + self.extra_args

    def user_net(self):
        """QEMU's user-mode network, isolated (restrict=on: the guest reaches
        nothing but the forwards given here). net = (guestfwd, hostfwd):
        guestfwd entries "PORT-cmd:COMMAND" make the guest's connections to
        10.0.2.100:PORT run COMMAND on the host with the connection as its
        stdin/stdout; hostfwd entries "HOSTPORT-GUESTPORT" forward
        127.0.0.1:HOSTPORT on the host to the guest's port."""
        if not self.net:
            return ["-nic", "none"]
        guestfwd, hostfwd = self.net
        opts = ["user", "id=n0", "restrict=on"]
        for g in guestfwd:
            port, cmd = g.split("-", 1)
            if "," in cmd:
                raise ValueError(f"guestfwd command {cmd!r}: QEMU's option syntax allows no commas")
            opts.append(f"guestfwd=tcp:{GUESTFWD_ADDR}:{port}-{cmd}")
        for h in hostfwd:
            hp, gp = h.split("-", 1)
            opts.append(f"hostfwd=tcp:127.0.0.1:{hp}-:{gp}")
        return ["-netdev", ",".join(opts), "-device", "virtio-net-pci,netdev=n0,romfile="]

    # ---- life cycle -------------------------------------------------------------------

    def start(self):
        qemu, why = find_qemu()
        if not qemu:
            raise GuestError(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self.argv(qemu)
        check_argv(argv)  # never the kernel's vhost-vsock: it would reach this machine's own vsock
        with open(self.qemu_log, "w") as f:
            f.write("# " + " ".join(argv) + "\n")
        self._files = {"out": open(self.console_log, "wb"), "err": open(self.qemu_log, "ab")}
        dev = f"vhost-user-vsock on {self.vsock_socket}" if self.vsock_socket else "no vsock"
        progress(f"{self.name}: booting ({dev}, tcg, console {self.console_log})")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._fds = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        self._pidfd = os.pidfd_open(self.proc.pid)
        self._dec = {k: codecs.getincrementaldecoder("utf-8")(errors="replace") for k in ("out", "err")}
        return self

    def _pump(self, deadline):
        """Read what QEMU wrote, waiting at most until deadline. False once both pipes are closed."""
        if not self._fds:
            return False
        left = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(list(self._fds), [], [], left)
        for fd in ready:
            which = self._fds[fd]
            data = os.read(fd, 65536)
            if not data:
                del self._fds[fd]
                continue
            self._files[which].write(data)
            self._files[which].flush()
            text = self._dec[which].decode(data).replace("\r", "")
            if which == "out":
                self._console += text
                # Timed when first read, whoever is waiting for what.
                if self.ready_s is None and READY_RE.search(self._console):
                    self.ready_s = time.monotonic() - self.started
                    progress(f"{self.name}: kernel {self.kernel}, ready in {self.ready_s:.2f} s")
            else:
                self._stderr += text
        return bool(self._fds)

    def fatal(self):
        """The first line QEMU printed with one of FATAL_QEMU in it, or None."""
        for line in self._stderr.splitlines():
            if any(p in line for p in FATAL_QEMU):
                return line
        return None

    def _check_fatal(self):
        line = self.fatal()
        if line:
            raise GuestError(f"{self.name}: QEMU reported '{line}': the vhost-user device is unusable "
                             + self._where())

    def _reap(self, timeout):
        """Wait up to timeout for QEMU to exit and reap it with wait4 (for its peak
        RSS); its exit status, or None if it still runs."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by Popen meanwhile
                return self.proc.wait()
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.rss_kib = ru.ru_maxrss
                self.cpu_s = ru.ru_utime + ru.ru_stime
                self.exited_s = time.monotonic() - self.started
                return self.proc.returncode
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self._fds:
                self._pump(deadline)  # EOF on both pipes comes with the exit
            else:
                select.select([self._pidfd], [], [], left)  # readable once QEMU has exited

    def wait_for(self, pattern, timeout=BOOT_TIMEOUT, start=0):
        """The first match of pattern (str or compiled regex) in the console at
        or after offset start; GuestError if QEMU exits, init fails or time runs out."""
        rx = pattern if hasattr(pattern, "search") else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            self._check_fatal()
            m = rx.search(self._console, start)
            if m:
                return m
            failed = INIT_FAILED_RE.search(self._console)
            if failed:
                raise GuestError(f"{self.name}: guest init failed: {failed.group(1)} " + self._where())
            if not self._fds:
                rc = self._reap(EXIT_TIMEOUT)
                raise GuestError(f"{self.name}: QEMU exited (status {rc}) before {rx.pattern!r} appeared "
                                 + self._where())
            if time.monotonic() >= deadline:
                raise GuestError(f"{self.name}: no {rx.pattern!r} on the console within {timeout:.0f} s "
                                 + self._where())
            self._pump(deadline)

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        return self.wait_for(READY_RE, timeout)

    def wait_exit(self, timeout=BOOT_TIMEOUT):
        """Wait for the command's exit marker and QEMU's own exit (status 0 after poweroff)."""
        ready = self.wait_ready(timeout)
        m = self.wait_for(EXIT_RE, timeout, start=ready.end())
        output = self._console[ready.end():m.start()].lstrip("\n")
        rc = self._reap(EXIT_TIMEOUT)
        if rc is None:
            raise GuestError(f"{self.name}: the guest powered off but QEMU did not exit within {EXIT_TIMEOUT} s "
                             "(a vhost-user backend not answering GET_VRING_BASE?) " + self._where())
        self._drain()
        self._check_fatal()
        if rc != 0:
            raise GuestError(f"{self.name}: QEMU exited with status {rc} after the guest powered off "
                             + self._where())
        res = GuestResult(int(m.group(1)), output, self.ready_s, self.exited_s, rc, self.rss_kib, self.cpu_s)
        progress(f"{self.name}: exit {res.code}; kernel {self.kernel}, ready {res.ready_s:.2f} s, QEMU ran {res.total_s:.2f} s"
                 + (f" using {res.cpu_s:.2f} s CPU" if res.cpu_s is not None else "")
                 + (f", peak RSS {res.rss_kib // 1024} MiB" if res.rss_kib else ""))
        return res

    def _drain(self):
        deadline = time.monotonic() + 5
        while self._fds and time.monotonic() < deadline:
            self._pump(deadline)

    def stop(self):
        """Kill QEMU if it runs (SIGTERM, then SIGKILL), read what is left, close the logs."""
        if self.proc is None:
            return
        if self.proc.returncode is None:  # not reaped: the pid is still ours
            os.kill(self.proc.pid, signal.SIGTERM)
            # QEMU with vhost-user waits for the backend on exit: bounded.
            if self._reap(10) is None:
                progress(f"{self.name}: QEMU ignored SIGTERM for 10 s: SIGKILL")
                os.kill(self.proc.pid, signal.SIGKILL)
                self._reap(EXIT_TIMEOUT)
        self._drain()
        for p in (self.proc.stdout, self.proc.stderr):
            p.close()
        self._fds = {}
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        for f in self._files.values():
            f.close()
        self._files = {}

    # ---- QMP and the transport reset ---------------------------------------------------

    def qmp(self, command, timeout=30, **args):
        """One QMP command (resettable guests only); its "return", or GuestError."""
        if not self.resettable:
            raise GuestError(f"{self.name}: QMP needs Guest(resettable=True)")
        if self._qmp is None:
            self._qmp = Qmp(self.qmp_path, timeout, idle=lambda: self._pump(time.monotonic()))
        return self._qmp.cmd(command, timeout, **args)

    def transport_reset(self, timeout=30):
        """What a guest sees of a snapshot restore or a migration, as near as
        QEMU allows with vhost-user-vsock (docs/reference/qemu-guests.md 7):
        the vsock device is unplugged and plugged back (replug_vsock). The
        guest kernel resets every connected vsock socket, as for
        VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (the same virtio_vsock_reset_sock),
        and reads its CID again when the device comes back; the backend drops
        its connections (their host sockets end). Returns the seconds it took."""
        if not (self.resettable and self.vsock_socket):
            raise GuestError(f"{self.name}: transport_reset needs Guest(resettable=True) with a vsock device")
        self.qmp("query-status", timeout)
        took = replug_vsock(self._qmp, timeout)
        progress(f"{self.name}: transport reset (vsock device unplugged and plugged back) in {took:.2f} s")
        return took

    @property
    def console(self):
        return self._console

    @property
    def kernel(self):
        """The guest kernel's release (uname -r) as its init printed it, or None before that."""
        return guest_kernel(self._console)

    @property
    def qemu_stderr(self):
        return self._stderr

    def logs(self, lines=100):
        return (f"--- {self.console_log} (last {lines} lines) ---\n{tail(self.console_log, lines)}\n"
                f"--- {self.qemu_log} (last {lines} lines) ---\n{tail(self.qemu_log, lines)}")

    def _where(self):
        # Errors name the logs; the qemu_guest fixture attaches their last 100
        # lines to the failed test's report.
        return f"(console {self.console_log}, QEMU stderr {self.qemu_log})"


class Qmp:
    """A QMP client on QEMU's monitor socket (a unix socket; -qmp unix:PATH,server=on,wait=off)."""

    def __init__(self, path, timeout=30, idle=None):
        self.path = str(path)
        self.idle = idle  # called while waiting for an event (a guest's console pump)
        self.events = []  # events read while waiting for replies
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self.f = self.sock.makefile("rw")
        self._read(timeout)  # the greeting
        self.cmd("qmp_capabilities", timeout)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        line = self.f.readline()
        if not line:
            raise GuestError(f"QEMU closed its QMP socket {self.path}")
        msg = json.loads(line)
        if "event" in msg:
            self.events.append(msg)
        return msg

    def cmd(self, command, timeout=30, **args):
        """One command; its "return", or GuestError with QEMU's error."""
        self.f.write(json.dumps({"execute": command, "arguments": args} if args else {"execute": command}) + "\n")
        self.f.flush()
        while True:
            r = self._read(timeout)
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise GuestError(f"QMP {command}: {r['error'].get('desc')}")

    def wait_event(self, name, timeout=30, **data):
        """The first event `name` whose data has the given items."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.get("event") == name and all(ev.get("data", {}).get(k) == v for k, v in data.items()):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(f"no QMP event {name} {data} within {timeout} s on {self.path}")
            if self.idle:
                self.idle()
            try:
                self._read(min(left, 0.2))
            except socket.timeout:
                pass

    def close(self):
        self.f.close()
        self.sock.close()


def replug_vsock(q, timeout=30, dev_id="vsock0", bus="rp0", chardev="vc"):
    """Unplug the vhost-user-vsock device `dev_id` and plug it back on the
    same root port, chardev and backend: the transport reset of
    Guest.transport_reset(). Returns the seconds it took."""
    t0 = time.monotonic()
    q.cmd("device_del", timeout, id=dev_id)
    q.wait_event("DEVICE_DELETED", timeout, device=dev_id)
    driver = VSOCK_DEVICE.split(",")[0]
    check_argv(["-device", f"{driver},chardev={chardev},bus={bus},id={dev_id}"])
    q.cmd("device_add", timeout, driver=driver, chardev=chardev, bus=bus, id=dev_id)
    return time.monotonic() - t0


def start_ready(argv, env, log_path, what, timeout=30, new_session=False):
    """Start a program that reports readiness on a file descriptor (hvsimd,
    hvsim-vhost): "{fd}" in argv becomes the write end of a pipe; READY=1 and
    then EOF mean ready, EOF alone that it died. Returns the Popen; raises
    GuestError (with the log's tail) when it dies or is not ready in time."""
    r, w = os.pipe()
    argv = [str(w) if a == "{fd}" else str(a) for a in argv]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                start_new_session=new_session)
    os.close(w)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                proc.kill()
                proc.wait(timeout)
                raise GuestError(f"{what} did not get ready in {timeout} s (log {log_path}):\n{tail(log_path, 15)}")
            chunk = os.read(r, 256)
            if not chunk:
                break
            got += chunk
    finally:
        os.close(r)
    if b"READY=1" not in got:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        raise GuestError(f"{what} exited ({proc.returncode}) before it was ready (log {log_path}):\n"
                         f"{tail(log_path, 15)}")
    return proc


def terminate(proc, timeout):
    """SIGTERM, as a user stops a daemon; SIGKILL after timeout. The exit
    status, or a string when it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
            return "killed: it ignored SIGTERM"
    return proc.returncode


def clean_env():
    """The environment without a partition: each program gets its own."""
    e = dict(os.environ)
    for k in ("HVSIM_DIR", "HVSIM_PARTITION"):
        e.pop(k, None)
    return e


class Daemon:
    """One hvsimd with its control sockets in run_dir; its state in state_dir
    ("" keeps none)."""

    def __init__(self, run_dir, binary=None, state_dir=""):
        self.dir = str(run_dir)
        self.binary = str(binary or BIN / "hvsimd")
        self.state_dir = str(state_dir)
        self.log_path = Path(run_dir) / "hvsimd.log"
        self.proc = None
        self.children = []  # processes of its world, killed at stop()

    def start(self, timeout=30):
        self.proc = start_ready([self.binary, "--dir", self.dir, "--state-dir", self.state_dir, "--ready-fd", "{fd}"],
                                clean_env(), self.log_path, "hvsimd", timeout)
        return self

    def stop(self, timeout=30):
        """Kill its children, then SIGTERM it; its exit status (a string if it
        had to be killed)."""
        for p in self.children:
            # The whole group (spawned with start_new_session): hvsim-run's
            # supervisor runs the program as its child.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.poll() is None:
                p.kill()
            p.wait(timeout)
        self.children = []
        return terminate(self.proc, timeout) if self.proc is not None else 0

    def env(self, partition=None):
        e = clean_env()
        e["HVSIM_DIR"] = self.dir
        if partition:
            e["HVSIM_PARTITION"] = partition
        return e

    def wait_listeners(self, proc, count=1, timeout=30):
        """Until `hvsimctl status` counts count listeners, or proc exits (a
        failure). The short wait on proc is the pause between polls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ctl("status", json_out=True)["listeners"] >= count:
                return
            try:
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                continue
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise GuestError(f"{proc.args} exited ({proc.returncode}) before listening: {err}")
        raise GuestError(f"no listener after {timeout} s")

    def ctl(self, *args, json_out=False, check=True, timeout=30):
        cmd = [str(BIN / "hvsimctl"), "--dir", self.dir] + (["--json"] if json_out else []) + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())
        if check and r.returncode != 0:
            raise GuestError(f"hvsimctl {' '.join(cmd[3:])} failed ({r.returncode}): {r.stderr}")
        if json_out and check:
            return json.loads(r.stdout)
        return r


class Backend:
    """build/bin/hvsim-vhost serving one guest's vhost-user-vsock socket,
    attached to hvsimd as the VM partition (HVSIM_DIR, HVSIM_PARTITION)."""

    def __init__(self, binary, socket_path, cid, env, log_path, extra_args=()):
        self.extra_args = [str(a) for a in extra_args]
        self.binary = str(binary)
        self.socket_path = str(socket_path)
        self.cid = cid
        self.env = env
        self.log_path = Path(log_path)
        self.proc = None

    def start(self, timeout=30):
        # A stale socket file from an earlier run races with the new listener.
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        argv = [self.binary, "--socket", self.socket_path, "--cid", str(self.cid), "--ready-fd", "{fd}"] + self.extra_args
        progress(f"starting {' '.join(argv)}")
        self.proc = start_ready(argv, self.env, self.log_path, "hvsim-vhost", timeout)
        if not os.path.exists(self.socket_path):
            raise GuestError(f"hvsim-vhost said READY=1 but {self.socket_path} does not exist (log {self.log_path})")
        return self

    def stop(self, timeout=10):
        """SIGTERM (SIGKILL after timeout); its exit status, or None if it was not running."""
        if self.proc is None:
            return None
        rc = terminate(self.proc, timeout)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        return rc

    def logs(self, lines=100):
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail(self.log_path, lines)}"

    def counters(self, timeout=10):
        """The descriptor-layout counters (parse_layouts): SIGUSR1 and the line
        the backend logs in answer, or, once it has exited (it ends with QEMU),
        the line it logged at exit. None if there is none within timeout."""
        if self.proc.poll() is not None:  # it ended with QEMU: its exit line has the totals
            found = LAYOUT_RE.findall(self.log_path.read_text(errors="replace"))
            return parse_layouts(found[-1]) if found else None
        before = len(LAYOUT_RE.findall(self.log_path.read_text(errors="replace")))
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            found = LAYOUT_RE.findall(self.log_path.read_text(errors="replace"))
            if len(found) > before:
                return parse_layouts(found[-1])
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                return None
            try:
                self.proc.wait(0.05)  # the pause between looks at the log; returns early if it dies
            except subprocess.TimeoutExpired:
                pass


LAYOUT_RE = re.compile(r"^hvsim-vhost: (layouts: [^\n]*)$", re.M)


def parse_layouts(line):
    """hvsim-vhost's `layouts: rx single=A split=B other=C; tx descs 1=.. 2=.. 3=.. 4+=..;
    tx rw descs 1=.. ...` as {"rx": {...}, "tx": {...}, "tx_rw": {...}}."""
    out = {}
    for part in line.split(":", 1)[1].split(";"):
        words = part.split()
        key = {"rx": "rx", "tx": "tx_rw" if words[1] == "rw" else "tx"}[words[0]]
        out[key] = {k: int(v) for k, v in (w.split("=") for w in words if "=" in w)}
    return out


def layouts_text(c):
    """One line for a report: what layouts a guest kernel used."""
    if not c:
        return "no counters"
    rx, tx, rw = c["rx"], c["tx"], c["tx_rw"]
    return (f"rx buffers: {rx['single']} one descriptor, {rx['split']} header+payload split, {rx['other']} other; "
            f"tx RW packets by descriptors: 1={rw['1']} 2={rw['2']} 3={rw['3']} 4+={rw['4+']} "
            f"(all tx: 1={tx['1']} 2={tx['2']} 3={tx['3']} 4+={tx['4+']})")


def main(argv=None):
    """python3 harness/qemu.py transport-reset QMP_SOCKET: the transport reset
    of a QEMU started by hand, whose vsock device sits on a root port
    (-device pcie-root-port,id=rp0,slot=1 -device
    vhost-user-vsock-pci,chardev=vc,bus=rp0,id=vsock0 -qmp unix:QMP_SOCKET,server=on,wait=off)."""
    import argparse

    ap = argparse.ArgumentParser(prog="harness/qemu.py", description=main.__doc__.split(":", 1)[0])
    sub = ap.add_subparsers(dest="op", required=True)
    tr = sub.add_parser("transport-reset", help="unplug and replug the guest's vhost-user-vsock device")
    tr.add_argument("qmp", help="QEMU's QMP unix socket")
    tr.add_argument("--id", default="vsock0")
    tr.add_argument("--bus", default="rp0")
    tr.add_argument("--chardev", default="vc")
    a = ap.parse_args(argv)
    try:
        q = Qmp(a.qmp)
    except (OSError, GuestError) as e:
        print(f"transport-reset: QMP socket {a.qmp}: {e}", file=sys.stderr)
        return 1
    try:
        took = replug_vsock(q, dev_id=a.id, bus=a.bus, chardev=a.chardev)
    except GuestError as e:
        print(f"transport-reset: {e}", file=sys.stderr)
        return 1
    finally:
        q.close()
    print(f"transport-reset: {a.id} unplugged and plugged back in {took:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
