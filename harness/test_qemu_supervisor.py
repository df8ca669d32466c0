# SPDX-License-Identifier: MIT
"""The supervisor's tests inside a QEMU guest running Debian's kernel (issue
14): 6.1, Debian 12's, by default, what most users run; it lacks per-thread
pidfds (PIDFD_THREAD came with 6.9), so the supervisor's pidfd_of() falls
back to the thread's process (its tgid from /proc/TID/status).

hvsimd, hvsimctl, hvsim-run and the interposer run in the guest with their
shared libraries, beside the supervisor tests' programs: the static C
programs of test_supervisor.py, the Go program on mdlayher/vsock (Debian's
golang-github-mdlayher-vsock-dev, GOPATH mode) and the shell script of
test_mixed_trees.py that starts a Go agent. vm-images/sv-guest.sh runs the
checks there and prints one "SV <check> ok|FAIL" line each; this side
waits for its "SV DONE" line (bounded, no sleeps) and fails on any missing
or failing line.

The image is build/vm-sv (beside build/vm, whose kernel it takes: build/vm-6.12
gives build/vm-6.12-sv), built here through vm-images/build.sh when its
inputs changed (`make vm-image-sv` does the same); build/vm stays as the
other QEMU tests want it.

SAFETY: the AF_VSOCK the Go and C programs reach is the guest kernel's, in
a guest this project boots; QEMU gets no vsock device at all (qemu.check_argv
refuses the kernel's vhost-vsock anyway). The fail-closed checks serve the
stand-in family 250 under hvsim-run's errno guard, as the host tests do.

Run with: /usr/bin/python3 -m pytest -m qemu harness/test_qemu_supervisor.py
(or: /usr/bin/python3 harness/test_qemu_supervisor.py OUTDIR, to build the image only)
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qemu
from test_mixed_trees import SCRIPT as AGENT_SCRIPT
from test_supervisor import FEAT as SV_FEAT, PROG as SV_PROG

REPO = Path(__file__).resolve().parent.parent
MIB = 2  # each direction of each exchange
SV_RE = re.compile(r"^SV (\S+) (ok|FAIL)(?: (.*))?$", re.M)
INFO_RE = re.compile(r"^SV info (\S+) (.*)$", re.M)
DONE_RE = re.compile(r"^SV DONE (\S+)[ \t]*$", re.M)
# Every line sv-guest.sh must print "ok".
CHECKS = ["hvsimd", "go-guest-dials-host", "go-host-dials-guest", "static-c", "signal-accept-eintr",
          "signal-accept-restart", "mixed-tree", "copies-ioctls-exec", "copies-counters", "fork-holds",
          "fail-closed-standin", "standin-counters", "supervisor-death-fails-closed"]
RUN_TIMEOUT = float(os.environ.get("HVSIM_SV_GUEST_TIMEOUT") or 600)  # a bound for hangs under TCG, never a wait

# Whether pidfd_open() takes a thread id (PIDFD_THREAD, 6.9) on the guest's kernel.
KPROBE = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *probe(void *a)
{
    int p = (int)syscall(SYS_pidfd_open, gettid(), O_EXCL); /* O_EXCL is PIDFD_THREAD */
    (void)a;
    if (p >= 0)
        printf("supported\n");
    else
        printf("unsupported %s\n", strerrorname_np(errno));
    return NULL;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, probe, NULL);
    pthread_join(t, NULL);
    return 0;
}
'''


def kernel_of(vm_dir):
    """The kernel of one of the Makefile's images: build/vm (6.1), build/vm-6.12, build/vm-newest."""
    name = Path(vm_dir).name
    return name[3:] if name in ("vm-6.12", "vm-newest") else "6.1"


def sv_dir():
    return Path(os.environ.get("HVSIM_VM_SV_DIR") or f"{qemu.VM_DIR}-sv")


def _replace_if_changed(new, dest):
    """Move new over dest unless they are the same bytes: an unchanged input
    keeps its time stamp, so build.sh finds the image up to date."""
    new, dest = Path(new), Path(dest)
    if dest.is_file() and dest.read_bytes() == new.read_bytes():
        new.unlink()
    else:
        new.replace(dest)
    return dest


def _write(dest, text, mode=0o644):
    tmp = Path(f"{dest}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    return _replace_if_changed(tmp, dest)


def _run(argv, what, timeout=900, **kw):
    """argv, or RuntimeError with its output; timeout bounds a hang (a
    loaded machine has made build.sh's rebuild take over 80 s)."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {r.stderr or r.stdout}")
    return r


def build_image(out, kernel):
    """build.sh OUT with the supervisor's programs and the tests' programs as
    extras; returns the qemu.Image."""
    out = Path(out).resolve()  # GOPATH entries must be absolute
    src = out / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("hvsimd", "hvsimctl", "hvsim-run"):
        if not os.access(qemu.BIN / name, os.X_OK):
            raise RuntimeError(f"{qemu.BIN / name} is missing: build it first (make all)")
    preload = qemu.BIN.parent / "lib" / "libhvsim-preload.so"
    if not preload.is_file():
        raise RuntimeError(f"{preload} is missing: build it first (make all)")
    for name, text in (("sv-prog", SV_PROG), ("sv-feat", SV_FEAT), ("sv-kprobe", KPROBE)):
        c = _write(src / f"{name}.c", text)
        _run(["gcc", "-static", "-s", "-std=c11", "-D_GNU_SOURCE", "-O1", "-Wall", "-pthread", "-o", f"{src / name}.tmp",
              str(c)], f"gcc {name}")
        _replace_if_changed(f"{src / name}.tmp", src / name)
    _write(src / "sv-agent.sh", AGENT_SCRIPT, 0o755)
    if shutil.which("go") is None or not Path("/usr/share/gocode/src/github.com/mdlayher/vsock").is_dir():
        raise RuntimeError("golang-go and golang-github-mdlayher-vsock-dev are not installed (make test-deps)")
    gosrc = src / "go" / "src" / "govsock"
    gosrc.mkdir(parents=True, exist_ok=True)
    _write(gosrc / "main.go", (REPO / "harness" / "data" / "govsock.go").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVSIM_")}
    env.update(GO111MODULE="off", GOPATH=f"{src / 'go'}:/usr/share/gocode", GOCACHE=str(src / "go" / "cache"),
               GOFLAGS="")
    _run(["go", "build", "-ldflags=-s -w", "-o", f"{src / 'govsock'}.tmp", "govsock"], "go build govsock", env=env,
         cwd=str(src))
    _replace_if_changed(f"{src / 'govsock'}.tmp", src / "govsock")
    # Stripped copies: a smaller initramfs boots sooner under TCG.
    for f in ("hvsimd", "hvsimctl", "hvsim-run"):
        _run(["strip", "-o", f"{src / f}.tmp", str(qemu.BIN / f)], f"strip {f}")
        _replace_if_changed(f"{src / f}.tmp", src / f)
    _run(["strip", "-o", f"{src / preload.name}.tmp", str(preload)], f"strip {preload.name}")
    _replace_if_changed(f"{src / preload.name}.tmp", src / preload.name)
    extras = [src / "hvsimd", src / "hvsimctl", src / "hvsim-run", src / preload.name,
              src / "sv-prog", src / "sv-feat", src / "sv-kprobe", src / "govsock", src / "sv-agent.sh",
              REPO / "vm-images" / "sv-guest.sh"]
    benv = dict(os.environ, HVSIM_VM_KERNEL=kernel, HVSIM_VM_CACHE=str(REPO / "build" / "vm-cache"), EXTRA_BINS="")
    _run(["sh", str(REPO / "vm-images" / "build.sh"), str(out)] + [str(e) for e in extras], "vm-images/build.sh",
         env=benv)
    img, why = qemu.find_image(out)
    if img is None:
        raise RuntimeError(why)
    return img


@pytest.fixture(scope="module")
def sv_image():
    _, why = qemu.find_qemu()
    if why:
        if os.environ.get("HVSIM_REQUIRE_QEMU") == "1":
            pytest.fail(why + " (HVSIM_REQUIRE_QEMU=1)")
        pytest.skip(why)
    try:
        return build_image(sv_dir(), kernel_of(qemu.VM_DIR))
    except RuntimeError as e:
        pytest.fail(f"the supervisor's guest image ({sv_dir()}): {e}")


def results(console):
    """{check: (ok|FAIL, detail)} and {info: value} from sv-guest.sh's lines."""
    return ({m.group(1): (m.group(2), m.group(3) or "") for m in SV_RE.finditer(console)},
            {m.group(1): m.group(2).strip() for m in INFO_RE.finditer(console)})


def problems(console):
    """What is wrong in sv-guest.sh's console output: each check of CHECKS
    missing or not ok, any other check that failed, and a DONE line that is
    missing or counts failures. An empty list: all passed."""
    checks, _ = results(console)
    out = [f"{c}: missing" for c in CHECKS if c not in checks]
    out += [f"{c}: {v[1]}" for c, v in checks.items() if v[0] != "ok"]
    done = DONE_RE.search(console)
    if not done:
        out.append("no SV DONE line")
    elif done.group(1) != "0":
        out.append(f"SV DONE {done.group(1)}")
    return out


def release_matches(kernel, release):
    """Whether uname -r release is kernel (6.1, 6.12) of the lock; newest: any."""
    return kernel == "newest" or release.startswith(kernel + ".")


def pidfd_thread_expected(release):
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", release).groups())
    return (major, minor) >= (6, 9)


@pytest.mark.qemu
def test_supervisor_tests_in_a_guest(sv_image, tmp_path):
    """In a guest of Debian's kernel: hvsimd with its folder on a tmpfs, a VM
    added; a Go listener and a Go dialer (mdlayher/vsock) both ways, a static
    C pair (also with a signal during its blocking accept, with and without
    SA_RESTART) and a shell script starting a Go agent (plain hvsim-run), 2 MiB
    checksummed each way with no read or write reaching the supervisor; dup,
    F_DUPFD_CLOEXEC, the queue ioctls, fork and exec, and a socket a forked
    child holds after its parent's close; the stand-in family refused and
    served as on the host, and a program that kills its supervisor gets ENOSYS."""
    kernel = kernel_of(qemu.VM_DIR)
    g = qemu.Guest(tmp_path, sv_image, cmd=f"sv-guest.sh {MIB}", name="sv-guest", mem="768M")
    # No vsock device at all: the guest's AF_VSOCK is served inside it (the
    # kernel command line, console=..., is the guest's, not a QEMU option).
    assert g.vsock_socket is None and not [a for a in g.argv() if "vsock" in a and not a.startswith("console=")]
    try:
        g.start()
        g.wait_ready(max(qemu.BOOT_TIMEOUT, 180))  # a bound for a hung boot on a loaded machine
        done = g.wait_for(DONE_RE, timeout=RUN_TIMEOUT)
        res = g.wait_exit(timeout=60)
        checks, info = results(res.output)
        qemu.progress(f"kernel {g.kernel}: {len(checks)} checks, DONE {done.group(1)}; info {info}; "
                      f"ready {res.ready_s:.1f} s, QEMU ran {res.total_s:.1f} s")
    finally:
        g.stop()
    release = info.get("kernel", "")
    assert release == g.kernel and release_matches(kernel, release), \
        f"the image of {kernel} booted {g.kernel} (sv-guest.sh saw {release!r})\n{res.output}"
    bad = problems(res.output)
    assert not bad and res.code == 0, "\n".join(bad) + f"\nexit {res.code}\n{res.output}"
    # 6.1 has no PIDFD_THREAD: pidfd_open(thread id) fails there, and every
    # multi-threaded (Go) program above was served through the fallback.
    want = "supported" if pidfd_thread_expected(release) else "unsupported EINVAL"
    assert info.get("pidfd_thread") == want, f"kernel {release}: PIDFD_THREAD {info.get('pidfd_thread')!r}, " \
                                             f"expected {want!r}"


def main(argv):
    """Build the image only: harness/test_qemu_supervisor.py [OUTDIR] (make vm-image-sv)."""
    out = Path(argv[1]) if len(argv) > 1 else sv_dir()
    try:
        img = build_image(out, os.environ.get("HVSIM_VM_KERNEL") or kernel_of(qemu.VM_DIR))
    except RuntimeError as e:
        print(f"vm-image-sv: {e}", file=sys.stderr)
        return 1
    print(f"vm-image-sv: {img.vmlinuz} {img.initrd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


def test_problems_names_missing_failing_and_unfinished_checks():
    """The parser of the console (no QEMU): a complete run passes; a missing
    line, a FAIL of a listed or an unlisted check, a missing or non-zero
    DONE each fail it."""
    good = "".join(f"SV {c} ok\n" for c in CHECKS) + "SV info kernel 6.1.0-57-cloud-amd64\nSV DONE 0\n"
    assert problems(good) == []
    assert problems(good.replace(f"SV {CHECKS[1]} ok\n", "")) == [f"{CHECKS[1]}: missing"]
    assert problems(good.replace(f"SV {CHECKS[2]} ok", f"SV {CHECKS[2]} FAIL bytes differ")) == \
        [f"{CHECKS[2]}: bytes differ"]
    assert problems(good + "SV mixed-tree-child FAIL no child\n") == ["mixed-tree-child: no child"]
    assert problems(good.replace("SV DONE 0\n", "")) == ["no SV DONE line"]
    assert problems(good.replace("SV DONE 0", "SV DONE 1")) == ["SV DONE 1"]
    assert results(good)[1]["kernel"] == "6.1.0-57-cloud-amd64"
