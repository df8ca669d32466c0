#!/bin/sh
# SPDX-License-Identifier: MIT
# sv-guest.sh: the supervisor's tests run inside the QEMU test guest (issue 14;
# harness/test_qemu_supervisor.py boots the image that holds it, build/vm-sv).
# hvsimd runs in the guest with its folder on a tmpfs; the programs run under
# the guest's hvsim-run, so their AF_VSOCK calls are served by the supervisor
# on the guest's own kernel (Debian 12's 6.1 by default).
#
#   sv-guest.sh [MIB]    MIB: the size of each direction's data (default 2)
#
# One line per check on stdout: "SV <check> ok" or "SV <check> FAIL <why>";
# "SV info <what> <value>" lines report facts; "SV DONE <failures>" ends it.
# Every step is bounded with timeout(1), so a hang becomes a FAIL line.
#
# Safety: the only AF_VSOCK here is the guest kernel's, inside a guest the
# project boots (given no vsock device, or only hvsim-vhost's); the
# fail-closed checks serve a stand-in family (250) under the errno guard
# that hvsim-run --serve-family puts in front, as the host tests do.
set -u
MIB=${1:-2}
T=/run/sv
D=$T/hvsim
STEP=90          # seconds a step may take under TCG before it counts as hung
STANDIN=250
FAILS=0
mkdir -p $T
mount -t tmpfs tmpfs $T || { echo "SV DONE mount-tmpfs-failed"; exit 1; }
mkdir -p $D
export HVSIM_DIR=$D

ok() { echo "SV $1 ok"; }
bad() {
    c=$1
    shift
    echo "SV $c FAIL $*"
    FAILS=$((FAILS + 1))
}
# The last few lines of a file, on one line, for a FAIL message.
brief() { tail -n 4 "$1" 2>/dev/null | tr '\n' '|'; }

echo "SV info kernel $(uname -r)"
# PIDFD_THREAD (6.9): whether pidfd_open takes a thread id here.
echo "SV info pidfd_thread $(sv-kprobe)"

# ---- hvsimd, with its readiness on a fifo (no polling) ----
mkfifo $T/ready
hvsimd --dir $D --state-dir "" --ready-fd 3 3>$T/ready >$T/hvsimd.log 2>&1 &
read -r r <$T/ready
case $r in READY=1*) ok hvsimd ;; *) bad hvsimd "not ready: $(brief $T/hvsimd.log)"; echo "SV DONE $FAILS"; exit 1 ;; esac
if ! hvsimctl vm add vm1 >/dev/null || ! hvsimctl service add 5000 sv >/dev/null; then
    bad setup "hvsimctl vm add / service add failed"
fi
CID=$(hvsimctl --json vm list | sed -n 's/.*"name": *"vm1"[^}]*"cid": *\([0-9]*\).*/\1/p')
echo "SV info vm1-cid ${CID:-none}"

head -c $((MIB * 1048576)) /dev/urandom >$T/a
head -c $((MIB * 1048576)) /dev/urandom >$T/b
SUM_A=$(sha256sum <$T/a)
SUM_B=$(sha256sum <$T/b)

# start_listener NAME PREFIX CMD...: CMD in the background, stdin $LIN or $T/a, stdout
# $T/NAME.out, stderr through a fifo until a line starting with PREFIX shows
# (then the rest goes to $T/NAME.err). Sets LPID; 1 if CMD ended first.
start_listener() {
    n=$1 p=$2
    shift 2
    rm -f $T/$n.fifo
    mkfifo $T/$n.fifo
    timeout $STEP "$@" <"${LIN:-$T/a}" >$T/$n.out 2>$T/$n.fifo &
    LPID=$!
    exec 4<$T/$n.fifo
    while read -r line <&4; do
        echo "$line" >>$T/$n.err
        case $line in "$p"*)
            cat <&4 >>$T/$n.err &
            exec 4<&-
            return 0 ;;
        esac
    done
    exec 4<&-
    return 1
}

# no_data_calls STATS: the supervisor saw no read (0) or write (1).
no_data_calls() { ! grep -q '^[01] ' "$1"; }

# pair CHECK LISTEN-PREFIX "LISTENER CMD" "DIALER CMD": one exchange, MIB each way.
pair() {
    c=$1 pre=$2 lcmd=$3 dcmd=$4
    rm -f $T/$c.*
    # shellcheck disable=SC2086
    if ! start_listener $c.l "$pre" $lcmd; then
        wait $LPID
        bad $c "listener ended ($?) before listening: $(brief $T/$c.l.err)"
        return
    fi
    # shellcheck disable=SC2086
    timeout $STEP $dcmd <$T/b >$T/$c.d.out 2>$T/$c.d.err
    drc=$?
    wait $LPID
    lrc=$?
    if [ $lrc != 0 ] || [ $drc != 0 ]; then
        bad $c "listener $lrc: $(brief $T/$c.l.err) dialer $drc: $(brief $T/$c.d.err)"
    elif [ "$(sha256sum <$T/$c.l.out)" != "$SUM_B" ]; then
        bad $c "the listener's data differs from what the dialer sent ($(wc -c <$T/$c.l.out) bytes)"
    elif [ "$(sha256sum <$T/$c.d.out)" != "$SUM_A" ]; then
        bad $c "the dialer's data differs from what the listener sent ($(wc -c <$T/$c.d.out) bytes)"
    elif [ -f $T/$c.l.stats ] && ! no_data_calls $T/$c.l.stats; then
        bad $c "the listener's read/write reached the supervisor: $(tr '\n' ' ' <$T/$c.l.stats)"
    elif [ -f $T/$c.d.stats ] && ! no_data_calls $T/$c.d.stats; then
        bad $c "the dialer's read/write reached the supervisor: $(tr '\n' ' ' <$T/$c.d.stats)"
    else
        ok $c
    fi
}

RUN="hvsim-run --dir $D"
SV="--supervise"
# Go (mdlayher/vsock): a host listener, a guest of vm1 dialing CID 2.
pair go-guest-dials-host listening \
    "$RUN --host $SV --stats $T/go-guest-dials-host.l.stats -- govsock listen 2 5000" \
    "$RUN --vm vm1 $SV --stats $T/go-guest-dials-host.d.stats -- govsock dial 2 5000"
# The reverse: a Go listener of vm1 on its own CID (an hv_sock guest's is
# VMADDR_CID_ANY), the host dialing the VM's CID.
pair go-host-dials-guest listening \
    "$RUN --vm vm1 $SV --stats $T/go-host-dials-guest.l.stats -- govsock listen 4294967295 6000" \
    "$RUN --host $SV --stats $T/go-host-dials-guest.d.stats -- govsock dial ${CID:-0} 6000"
# A static C program (glibc's wrappers, -static): host listener, guest connector.
pair static-c listening \
    "$RUN --host $SV --stats $T/static-c.l.stats -- sv-prog 40 listen 5000" \
    "$RUN --vm vm1 $SV --stats $T/static-c.d.stats -- sv-prog 40 connect 2 5000"
# A signal (SIGALRM, 200 ms) during the listener's blocking accept: without
# SA_RESTART the accept fails with EINTR and is called again, with it the
# kernel restarts the call as a new notification; the worker serving the
# interrupted call takes no connection, so the one that comes after the
# signal is accepted. The dialer starts only once the signal was handled.
pair signal-accept-eintr "first accept EINTR" \
    "$RUN --host $SV -- sv-prog 40 listen 5000 0" \
    "$RUN --vm vm1 $SV -- sv-prog 40 connect 2 5000"
pair signal-accept-restart signal \
    "$RUN --host $SV -- sv-prog 40 listen 5000 1" \
    "$RUN --vm vm1 $SV -- sv-prog 40 connect 2 5000"
# A mixed tree: plain hvsim-run (the default mode) on a shell script that
# starts the Go agent as its child; a Go host listener, also default mode.
pair mixed-tree listening \
    "$RUN --host --stats $T/mixed-tree.l.stats -- govsock listen 2 5000" \
    "$RUN --vm vm1 --stats $T/mixed-tree.d.stats -- sv-agent.sh govsock dial 2 5000"
grep -q "child exited 0" $T/mixed-tree.d.err 2>/dev/null || bad mixed-tree-child "the script did not report its Go child: $(brief $T/mixed-tree.d.err)"

# ---- copies, queue ioctls, socket options, fork and exec (the stand-in family) ----
# feat CHECK MODE EXPECTED SEND: sv-feat MODE as a guest of vm1 against a
# host listener that sends the file SEND and half-closes; its stdout must be
# EXPECTED (lines joined with |), and the listener must read EOF and end 0.
printf hello >$T/hello
feat() {
    c=$1 mode=$2 want=$3
    rm -f $T/$c.*
    LIN=$4
    if ! start_listener $c.l listening $RUN --host --serve-family $STANDIN -- sv-prog $STANDIN listen 5000; then
        LIN=
        wait $LPID
        bad $c "listener ended ($?) before listening: $(brief $T/$c.l.err)"
        return
    fi
    LIN=
    timeout $STEP $RUN --vm vm1 --serve-family $STANDIN --stats $T/$c.stats -- sv-feat $STANDIN $mode \
        </dev/null >$T/$c.out 2>$T/$c.err
    frc=$?
    wait $LPID
    lrc=$?
    got=$(tr '\n' '|' <$T/$c.out)
    if [ $frc != 0 ] || [ "$got" != "$want" ]; then
        bad $c "exit $frc: $got (expected $want) $(brief $T/$c.err)"
    elif [ $lrc != 0 ]; then
        bad $c "the host listener ended $lrc (no EOF once the last holder closed?): $(brief $T/$c.l.err)"
    else
        ok $c
    fi
}
# dup and F_DUPFD_CLOEXEC give served numbers (>= 768, >= 900 close-on-exec)
# that answer as the family; SIOCINQ/SIOCOUTQ as hv_sock on 6.1 (no ioctl);
# a forked and exec'd child keeps its inherited socket served.
feat copies-ioctls-exec main "dup OK high|dupfd OK 1 cloexec 1|dup family $STANDIN|after closing the copies family $STANDIN|type 1 protocol 0|inq EOPNOTSUPP -1|outq EOPNOTSUPP -1|child inherited 1 family $STANDIN|child socket OK high|" $T/hello
st=$(sort $T/copies-ioctls-exec.stats 2>/dev/null | tr '\n' ' ')
case " $st" in *" 16 2 "*" 32 1 "*" 72 1 "*) ok copies-counters ;; *) bad copies-counters "ioctl 2, dup 1, fcntl 1 expected: $st" ;; esac
# The parent closes first, a forked child (which never made a served call)
# still holds the socket: the supervisor finds it in the tree
# (/proc/PID/task/TID/children). The host sends nothing here: closing a
# socket with unread data may reset the connection, and the listener's clean
# EOF is what shows the last holder's close ended it.
feat fork-holds forkhold "child after the parent's close family $STANDIN|" /dev/null

# ---- fail-closed, with the stand-in family under the errno guard ----
timeout $STEP $RUN --vm vm1 --serve-family $STANDIN --stats $T/probe.stats -- sv-prog $STANDIN probe \
    >$T/probe.out 2>$T/probe.err
rc=$?
want="socket40 EAFNOSUPPORT|socket34 EAFNOSUPPORT|socketpair EOPNOTSUPP|x32 getpid ENOSYS|io_uring_setup ENOSYS|served OK high|domain $STANDIN|plain calls OK|"
got=$(head -n 8 $T/probe.out | tr '\n' '|')
if [ $rc = 0 ] && [ "$got" = "$want" ]; then ok fail-closed-standin; else bad fail-closed-standin "exit $rc: $got $(brief $T/probe.err)"; fi
# 100 AF_INET sockets, pipes and closes: only socket() and one getsockopt reached the supervisor.
st=$(sort $T/probe.stats 2>/dev/null | tr '\n' ' ')
if [ "$st" = "41 1 55 1 " ]; then ok standin-counters; else bad standin-counters "supervisor counters: $st"; fi
# The program kills its supervisor: its next socket() of the served family fails (ENOSYS).
# Its stdout goes through cat: the program outlives its parent (hvsim-run), and
# the pipe's EOF, not hvsim-run's end, says it has written everything.
{
    timeout $STEP $RUN --vm vm1 --serve-family $STANDIN -- sv-prog $STANDIN probe die 2>$T/die.err
    echo $? >$T/die.rc
} | cat >$T/die.out
rc=$(cat $T/die.rc)
if [ $rc = 137 ] && grep -qx "after-death ENOSYS" $T/die.out; then
    ok supervisor-death-fails-closed
else
    bad supervisor-death-fails-closed "exit $rc: $(grep after-death $T/die.out) $(brief $T/die.err)"
fi

hvsimctl status >/dev/null 2>&1 || bad hvsimd-alive "hvsimd no longer answers: $(brief $T/hvsimd.log)"
echo "SV DONE $FAILS"
[ $FAILS = 0 ]
