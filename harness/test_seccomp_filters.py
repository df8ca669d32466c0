# SPDX-License-Identifier: MIT
"""The seccomp filters, built with libseccomp (sim/preload/vsock_filter.c),
run on made-up system calls: `hvsim-run --print-filters` prints each mode's
stack as the kernel gets it, and a classic-BPF interpreter here evaluates the
stack the way the kernel does (the strongest action of all filters wins).

Nothing here makes a system call it describes: the calls are data, so the
families 40 and 34 are tested as they are, not through a stand-in.

- The default mode's stack is the supervisor's (the interposer rides on it
  in-process), with no errno wall that would hide the supervisor and
  nothing notified below fd 768, where the interposer keeps its sockets.
- The actions that matter, spelled out: x32 calls ENOSYS, another ABI killed,
  socket/socketpair of 40 and 34 (also with garbage in the high half of the
  argument) refused or served, io_uring ENOSYS, the vhost ioctls EPERM, the fd
  calls served only from fd 768 up, socket(AF_INET) never served.
- The same action as before for every call: the filters hvsim-run installed
  when they were hand-written BPF are kept in
  harness/data/seccomp_filters_x86_64_before.txt, and a sweep over system call
  numbers, the two ABIs of an x86_64 kernel and arguments finds no call whose
  action changed, but for two the program cannot tell apart (same_outcome).

Run with: /usr/bin/python3 -m pytest harness/test_seccomp_filters.py
"""
import itertools
import os
import platform
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HVSIM_BIN") or REPO / "build" / "bin")
BEFORE = REPO / "harness" / "data" / "seccomp_filters_x86_64_before.txt"

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
X32 = 0x40000000
ALLOW, KILL_PROCESS, TRACE, NOTIFY = 0x7FFF0000, 0x80000000, 0x7FF00000, 0x7FC00000
ENOSYS, EPERM, EAFNOSUPPORT, EOPNOTSUPP = 38, 1, 97, 95
NR = {"close": 3, "ioctl": 16, "socket": 41, "connect": 42, "accept": 43, "socketpair": 53, "setsockopt": 54,
      "getsockopt": 55, "accept4": 288, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
      "read": 0, "write": 1, "sendto": 44, "recvfrom": 45, "bind": 49}
GET_LOCAL_CID, SET_GUEST_CID, SET_RUNNING, FIONREAD = 0x7B9, 0x4008AF60, 0x4004AF61, 0x541B
MODES = {"default": [], "interpose": ["--interpose"], "supervise": ["--supervise"],
         "serve-family 250": ["--serve-family", "250"]}
# The recorded hand-written filters predate the default mode, whose stack is
# the supervisor's (the interposer rides on top in-process): compared with that.
BEFORE_MODE = {"default": "supervise"}

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="the recorded filters and the cases are x86_64's")


def errno(e):
    return 0x00050000 | e


# ---- a classic BPF interpreter, as far as seccomp programs go ----------------------------------

def run_bpf(prog, arch, nr, args):
    """The program's return value for one call (struct seccomp_data)."""
    data = bytearray(64)
    data[0:4] = nr.to_bytes(4, "little")
    data[4:8] = arch.to_bytes(4, "little")
    for i, a in enumerate(args):
        data[16 + 8 * i:24 + 8 * i] = (a & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    acc, x, mem, pc = 0, 0, [0] * 16, 0
    for _ in range(4096):
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:  # ld w abs
            acc = int.from_bytes(data[k:k + 4], "little")
        elif code == 0x00:  # ld imm
            acc = k
        elif code == 0x60:  # ld mem
            acc = mem[k]
        elif code == 0x61:  # ldx mem
            x = mem[k]
        elif code == 0x02:  # st
            mem[k] = acc
        elif code == 0x03:  # stx
            mem[k] = x
        elif code == 0x54:  # alu and k
            acc &= k
        elif code == 0x44:  # alu or k
            acc |= k
        elif code == 0x07:  # tax
            x = acc
        elif code == 0x87:  # txa
            acc = x
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:  # jumps on k
            op = code & 0xF0
            if code & 0x08:
                raise AssertionError(f"jump on X not handled: {code:#x}")
            cond = {0x10: acc == k, 0x20: acc > k, 0x30: acc >= k, 0x40: (acc & k) != 0}.get(op)
            if cond is None:
                raise AssertionError(f"jump {code:#x} not handled")
            pc += jt if cond else jf
        elif code == 0x06:  # ret k
            return k
        else:
            raise AssertionError(f"BPF instruction {code:#06x} not handled")
    raise AssertionError("the program did not return")


def strength(ret):
    """The kernel keeps the action with the lowest signed value."""
    a = ret & 0xFFFF0000
    return a - (1 << 32) if a & 0x80000000 else a


def stack_action(progs, arch, nr, args):
    rets = [run_bpf(p, arch, nr, args) for p in progs]
    return min(rets, key=strength)


def action(ret):
    """Only what the program sees: the action and, for errno, the errno."""
    a = ret & 0xFFFF0000
    return ret if a == 0x00050000 else a


def parse(text):
    """{mode or None: [program, ...]} from --print-filters or the recorded file."""
    out, mode, prog = {}, None, None
    for line in text.splitlines():
        p = line.split()
        if not p or p[0].startswith("#"):
            continue
        if p[0] == "mode":
            mode = " ".join(p[1:])
            out[mode] = []
        elif p[0] == "filter":
            prog = []
            out.setdefault(mode, []).append(prog)
        else:
            prog.append((int(p[0], 16), int(p[1]), int(p[2]), int(p[3], 16)))
    return out


@pytest.fixture(scope="module")
def stacks():
    run = BIN / "hvsim-run"
    if not os.access(run, os.X_OK):
        pytest.fail(f"{run} is missing: build it first (make all)")
    out = {}
    for mode, extra in MODES.items():
        r = subprocess.run([str(run), "--print-filters"] + extra, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        out[mode] = parse(r.stdout)[None]
    return out


def act(stack, nr, *args, arch=AUDIT_ARCH_X86_64):
    return action(stack_action(stack, arch, nr, list(args) + [0] * (6 - len(args))))


# ---- the actions, spelled out ------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_x32_other_abi_io_uring_and_vhost(stacks, mode):
    s = stacks[mode]
    for nr in (NR["socket"], NR["read"], NR["ioctl"], 0, 547):
        assert act(s, X32 | nr, 40) == errno(ENOSYS), (mode, nr)
    for nr in (NR["socket"], 102, 359, 0):
        assert act(s, nr, 40, arch=AUDIT_ARCH_I386) == KILL_PROCESS, (mode, nr)
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert act(s, NR[name]) == errno(ENOSYS)
    for req in (SET_GUEST_CID, SET_RUNNING):
        assert act(s, NR["ioctl"], 3, req) == errno(EPERM)
    assert act(s, NR["ioctl"], 3, FIONREAD) == ALLOW and act(s, NR["ioctl"], 800, 0x5421) == ALLOW  # FIONBIO
    assert act(s, 72, 800, 3) == ALLOW and act(s, 72, 800, 4) == ALLOW  # fcntl F_GETFL, F_SETFL
    assert act(s, NR["socket"], 2, 1, 0) == ALLOW and act(s, NR["socketpair"], 1, 1, 0) == ALLOW
    assert act(s, NR["read"], 800) == ALLOW and act(s, NR["write"], 800) == ALLOW


def test_families_40_and_34_interposer_wall(stacks):
    s = stacks["interpose"]
    for fam in (40, 34, 40 | (0x12345678 << 32), 34 | (1 << 63)):
        assert act(s, NR["socket"], fam, 1, 0) == errno(EAFNOSUPPORT), hex(fam)
        assert act(s, NR["socketpair"], fam, 1, 0) == errno(EAFNOSUPPORT), hex(fam)
    assert act(s, NR["ioctl"], 3, GET_LOCAL_CID) == errno(EPERM)
    assert act(s, NR["connect"], 800) == ALLOW


@pytest.mark.parametrize("mode", ["default", "supervise"])
def test_families_40_and_34_supervisor(stacks, mode):
    s = stacks[mode]
    for fam in (40, 34, 40 | (0x12345678 << 32)):
        assert act(s, NR["socket"], fam, 1, 0) == NOTIFY, hex(fam)
    assert act(s, NR["socketpair"], 40, 1, 0) == errno(EOPNOTSUPP)
    assert act(s, NR["socketpair"], 34, 1, 0) == errno(EAFNOSUPPORT)
    assert act(s, NR["ioctl"], 3, GET_LOCAL_CID) == NOTIFY
    for name in ("connect", "close", "accept4", "setsockopt", "bind"):
        assert act(s, NR[name], 768) == NOTIFY and act(s, NR[name], 767) == ALLOW, name
    # Without the notify filter (the supervisor gone, or a mistake in it) the
    # guard alone fails the call: TRACE, ENOSYS when nothing traces.
    assert action(run_bpf(s[1], AUDIT_ARCH_X86_64, NR["socket"], [40, 1, 0, 0, 0, 0])) == TRACE
    assert action(run_bpf(s[1], AUDIT_ARCH_X86_64, NR["socket"], [34, 1, 0, 0, 0, 0])) == TRACE


def test_default_mode_is_the_supervisor_stack(stacks):
    """Plain hvsim-run installs exactly the supervisor's filters, so a Go or
    static child of a script is served; no errno wall for 40 or 34 (an ERRNO
    action would outrank the notification and hide the supervisor), and
    every call an interposed program makes on its own sockets below the
    floor (the interposer's anchors, its control connection, AF_UNIX and TCP)
    is left to the kernel without a notification."""
    s = stacks["default"]
    assert s == stacks["supervise"]
    for prog in s:
        for fam in (40, 34):
            assert action(run_bpf(prog, AUDIT_ARCH_X86_64, NR["socket"], [fam, 1, 0, 0, 0, 0])) != errno(EAFNOSUPPORT)
    for name in ("connect", "close", "accept4", "setsockopt", "getsockopt", "bind", "sendto", "recvfrom", "read",
                 "write"):
        for fd in (3, 512, 767):
            assert act(s, NR[name], fd) == ALLOW, (name, fd)
    assert act(s, 72, 512, 0) == ALLOW and act(s, 32, 512) == ALLOW  # fcntl F_DUPFD, dup of an anchor
    assert act(s, NR["socket"], 1, 1, 0) == ALLOW  # the library's AF_UNIX sockets


def test_standin_stack_refuses_the_real_families(stacks):
    s = stacks["serve-family 250"]
    assert act(s, NR["socket"], 250, 1, 0) == NOTIFY
    for fam in (40, 34):
        assert act(s, NR["socket"], fam, 1, 0) == errno(EAFNOSUPPORT)
        assert act(s, NR["socketpair"], fam, 1, 0) == errno(EAFNOSUPPORT)


# ---- the same actions as the hand-written filters ----------------------------------------------

def sweep():
    nrs = list(range(0, 460)) + [547, 0xFFFFFFFF] + [X32 | n for n in (0, 16, 41, 42, 53, 425, 512, 547)]
    arg0 = [0, 2, 3, 34, 40, 250, 767, 768, 800, 0xFFFFFFFF, 40 | (0x12345678 << 32), 34 | (1 << 63),
            5 | (1 << 40), (1 << 64) - 1]
    arg1 = [0, 1, GET_LOCAL_CID, SET_GUEST_CID, SET_RUNNING, FIONREAD, GET_LOCAL_CID | (7 << 32)]
    for arch in (AUDIT_ARCH_X86_64, AUDIT_ARCH_I386):
        for nr in (nrs if arch == AUDIT_ARCH_X86_64 else [0, 41, 102, 359]):
            for a0, a1 in itertools.product(arg0 if nr in (3, 16, 32, 41, 42, 43, 49, 53, 54, 72, 288) else [0, 40],
                                            arg1 + [SIOCOUTQ, F_DUPFD, F_DUPFD_CLOEXEC, 3] if nr in (16, 72) else [1]):
                yield arch, nr, [a0, a1, 0, 0, 0, 0]


FD_CALLS = {NR[n] for n in ("close", "connect", "accept", "accept4", "bind", "setsockopt", "getsockopt")} | {
    48, 50, 51, 52}
NR_DUP, NR_FCNTL, F_DUPFD, F_DUPFD_CLOEXEC, SIOCOUTQ = 32, 72, 0, 1030, 0x5411


def served_since(mode, nr, args):
    """Calls the supervisor serves since the filters moved to libseccomp, on
    purpose: SIOCINQ/SIOCOUTQ (answered per personality), dup and F_DUPFD
    (the copy at a served number), all on fds >= 768 only."""
    if mode == "interpose" or args[0] < 768:
        return False
    req = args[1] & 0xFFFFFFFF
    return ((nr == NR["ioctl"] and req in (FIONREAD, SIOCOUTQ)) or nr == NR_DUP or
            (nr == NR_FCNTL and req in (F_DUPFD, F_DUPFD_CLOEXEC)))


def same_outcome(nr, args, old, new):
    """The two differences the program cannot see. An fd call whose fd has a
    non-zero high half now goes to the supervisor (libseccomp has no masked
    greater-or-equal; the 64-bit compare only adds calls), which reads the int
    as the kernel does and passes it on when it is none of its sockets.
    System call -1 is left to the kernel by libseccomp (a tracer's "skip"),
    which answers ENOSYS itself, as the old filter did."""
    if nr in FD_CALLS and args[0] >> 32 and old == ALLOW and new == NOTIFY:
        return True
    return nr == 0xFFFFFFFF and old == errno(ENOSYS) and new == ALLOW


@pytest.mark.parametrize("mode", MODES)
def test_same_actions_as_the_hand_written_filters(stacks, mode):
    before = parse(BEFORE.read_text())[BEFORE_MODE.get(mode, mode)]
    changed = []
    for arch, nr, args in sweep():
        old = action(stack_action(before, arch, nr, args))
        new = action(stack_action(stacks[mode], arch, nr, args))
        if served_since(mode, nr, args):
            assert new == NOTIFY, (mode, nr, [hex(a) for a in args[:2]])
            continue
        if old != new and not same_outcome(nr, args, old, new):
            changed.append(f"arch {arch:#x} nr {nr:#x} args {[hex(a) for a in args[:2]]}: {old:#x} -> {new:#x}")
    assert not changed, f"{len(changed)} calls changed action under {mode}:\n" + "\n".join(changed[:20])
