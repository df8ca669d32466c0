#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-images/build.sh OUTDIR [EXTRA_BIN...]
# vm-images/build.sh --update-lock newest   (moves the pin of the newest kernel)
#
# Builds the test guest for QEMU: OUTDIR/vmlinuz (Debian's cloud kernel, never
# installed on this machine) and OUTDIR/initrd.gz (busybox-static, socat with
# its shared libraries, the virtio/vsock modules, extra binaries, and /init).
# See vm-images/README.md.
#
# Environment:
#   EXTRA_BINS       more programs to put in the guest's /bin (space-separated;
#                    arguments after OUTDIR are added to them)
#   HVSIM_VM_KERNEL  which kernel of kernels.lock: 6.1 (default), 6.12, newest
#   HVSIM_VM_CACHE   where the kernels (CACHE/<kernel>/) and the private apt
#                    configuration (CACHE/apt/) are kept (default OUTDIR/cache)
#
# Nothing here runs socat: it is only copied. (The host's AF_VSOCK device is
# not ours to use; inside the guest it is.)
set -eu

usage() {
    echo "usage: $0 OUTDIR [EXTRA_BIN...]  (env: HVSIM_VM_KERNEL, EXTRA_BINS, HVSIM_VM_CACHE)" >&2
    echo "       $0 --update-lock newest    (env: HVSIM_VM_CACHE, default build/vm-cache)" >&2
    exit 2
}
[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
KERNEL=${HVSIM_VM_KERNEL:-6.1}
UPDATE_LOCK=""
if [ "$1" = --update-lock ]; then
    [ "${2:-}" = newest ] || { echo "$0: only the newest kernel's pin moves (--update-lock newest)" >&2; exit 2; }
    UPDATE_LOCK=1
    KERNEL=newest
    set -- "${HVSIM_VM_CACHE:-build/vm-cache}/update-lock.out"
fi

OUT=$1
shift
EXTRA="${EXTRA_BINS:-} $*"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${HVSIM_VM_CACHE:-$OUT/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
KDIR=$CACHE/$KERNEL

# Loaded in this order by /init. A module that the kernel has built in is
# skipped; one that is missing, or that depends on a module not loaded before
# it, stops the build.
# virtio_net (with failover, net_failover) is for QEMU's user-mode network:
# the conformance control channel and the TCP baseline of the benchmarks.
VIRTIO_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio"
VSOCK_MODULES="vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport vsock_loopback"
MODULES="$VIRTIO_MODULES $VSOCK_MODULES failover net_failover virtio_net"
# shellcheck disable=SC2116,SC2086
MODULES=$(echo $MODULES)  # one line, single spaces: it is compared with the cache's list

START=$(date +%s%N)
say() { printf 'vm-image: %s\n' "$*"; }
die() { printf 'vm-image: error: %s\n' "$*" >&2; exit 1; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# ---- 1. host packages ----------------------------------------------------------------
# qemu-system-x86 runs the guest (the harness needs it), busybox-static and
# socat go into the initramfs.
sh "$REPO/ci/deps.sh" qemu-system-x86 busybox-static socat xz-utils
BUSYBOX=$(command -v busybox) || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "busybox not found after installing busybox-static"
SOCAT=$(command -v socat) || die "socat not found after installing it"

# ---- 2. the kernel and modules (cached, pinned in kernels.lock) ---------------------
LOCK=$HERE/kernels.lock
lock_lines() {  # the lock's lines of kernel $1, comments and spacing dropped
    sed -e 's/#.*//' "$LOCK" | awk -v k="$1" '$1 == k { print $1, $2, $3, $4, $5 }'
}
LOCKED=$(lock_lines "$KERNEL")
[ -n "$LOCKED" ] || die "kernel '$KERNEL' is not in $LOCK (6.1, 6.12 or newest)"

kernel_cached() {
    [ -f "$KDIR/.complete" ] && [ -f "$KDIR/vmlinuz" ] && [ "$(cat "$KDIR/modules.list" 2>/dev/null)" = "$MODULES" ] &&
        [ "$(cat "$KDIR/lock" 2>/dev/null)" = "$LOCKED" ]
}

# A private apt configuration (sources, lists and cache under $APTDIR): the
# machine's own sources are never touched, and apt-get update here needs no root.
APTDIR=$CACHE/apt
apt_private() {
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
    key=/usr/share/keyrings/debian-archive-keyring.gpg
    cat >"$APTDIR/sources.list" <<EOF
deb [signed-by=$key] http://deb.debian.org/debian bookworm main
deb [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=$key] http://deb.debian.org/debian trixie main
deb [signed-by=$key] http://deb.debian.org/debian sid main
EOF
    APT_OPTS="-o APT::Sandbox::User=$(id -un) -o Dir::Cache=$APTDIR/cache -o Dir::State::Lists=$APTDIR/lists
        -o Dir::Etc::SourceList=$APTDIR/sources.list -o Dir::Etc::SourceParts=/dev/null"
}
apt_update() {
    say "apt-get update of the private lists ($APTDIR; bookworm, bookworm-security, trixie, sid)"
    # shellcheck disable=SC2086
    apt-get $APT_OPTS update -q >&2 || die "apt-get update (private lists in $APTDIR) failed"
}

# --update-lock newest: the packages of sid's linux-image-cloud-amd64 now.
update_lock() {
    apt_private
    apt_update
    # shellcheck disable=SC2086
    ver=$(apt-cache $APT_OPTS policy linux-image-cloud-amd64 | sed -n 's/^ *Candidate: //p')
    # shellcheck disable=SC2086
    img=$(apt-cache $APT_OPTS depends "linux-image-cloud-amd64=$ver" |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    [ -n "$img" ] || die "cannot resolve sid's linux-image-cloud-amd64"
    # shellcheck disable=SC2086
    split=$(apt-cache $APT_OPTS show "$img" | sed -n '/^Depends:/{s/,/\n/g;p}' |
        sed -n 's/^.*\(linux-\(binary\|modules\|base\)-[^ ]*\) .*$/\1/p' | sort -u)
    pkgs=${split:-$img}
    new=""
    for p in $pkgs; do
        # shellcheck disable=SC2086
        info=$(apt-cache $APT_OPTS show "$p" | awk '/^Version:/ { v = $2 } /^SHA256:/ { print v, $2; exit }')
        new="$new$(printf 'newest  sid               %-40s%s' "$p" "$info")
"
    done
    tmp=$LOCK.tmp
    grep -v '^newest ' "$LOCK" >"$tmp"
    printf '%s' "$new" >>"$tmp"
    mv "$tmp" "$LOCK"
    say "$LOCK: newest is now $ver ($pkgs); add a note to the lock's header and commit"
}

fetch_kernel() {
    work=$CACHE/fetch-$KERNEL.tmp
    rm -rf "$work" "$KDIR.tmp"
    mkdir -p "$work/deb" "$KDIR.tmp/modules"
    apt_private
    [ -n "$(ls "$APTDIR/lists" 2>/dev/null | grep -v partial)" ] || apt_update
    t=$(date +%s%N)
    echo "$LOCKED" | while read -r _ suite pkg ver sum; do
        say "downloading $pkg $ver ($suite; apt-get download, not installed)"
        # shellcheck disable=SC2086
        if ! (cd "$work/deb" && apt-get $APT_OPTS download -q "$pkg=$ver" >&2); then
            apt_update
            # shellcheck disable=SC2086
            (cd "$work/deb" && apt-get $APT_OPTS download -q "$pkg=$ver" >&2) ||
                die "apt-get download $pkg=$ver failed (no longer in $suite? move the pin: $LOCK)"
        fi
        deb=$(ls "$work/deb/${pkg}_"*.deb)
        got=$(sha256sum "$deb" | cut -d' ' -f1)
        [ "$got" = "$sum" ] || die "$(basename "$deb"): sha256 $got, but $LOCK pins $sum"
    done
    say "downloaded and checked $(echo "$LOCKED" | wc -l) package(s) in $(ms_since "$t") ms"

    t=$(date +%s%N)
    for deb in "$work/deb"/*.deb; do
        dpkg -x "$deb" "$work/root"
    done
    vmlinuz=$(ls "$work/root/boot"/vmlinuz-* "$work/root"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -n 1)
    [ -n "$vmlinuz" ] || die "no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz in the packages of $KERNEL"
    mdir=$(ls -d "$work/root"/lib/modules/* "$work/root"/usr/lib/modules/* 2>/dev/null | head -n 1)
    [ -d "$mdir/kernel" ] || die "no modules in the packages of $KERNEL"
    kver=$(basename "$mdir")
    cp "$vmlinuz" "$KDIR.tmp/vmlinuz"
    cp "$work/root/boot/config-$kver" "$KDIR.tmp/config" 2>/dev/null || cp "$mdir/config" "$KDIR.tmp/config" 2>/dev/null || true

    loaded=" "
    builtin=""
    xz=0
    : >"$KDIR.tmp/modules.load"
    for m in $MODULES; do
        # modules.builtin lists kernel/…/NAME.ko; names may use - or _.
        alt=$(echo "$m" | tr _ -)
        if grep -Eq "/($m|$alt)\.ko\$" "$mdir/modules.builtin" 2>/dev/null; then
            builtin="$builtin $m"
            loaded="$loaded$m "
            continue
        fi
        f=$(find "$mdir/kernel" \( -name "$m.ko" -o -name "$m.ko.*" -o -name "$alt.ko" -o -name "$alt.ko.*" \) |
            head -n 1)
        [ -n "$f" ] || die "module $m is neither built in nor in the packages of $KERNEL"
        case $f in
        *.ko) cp "$f" "$KDIR.tmp/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$KDIR.tmp/modules/$m.ko" && xz=$((xz + 1)) ;;
        *.ko.gz) gzip -dc "$f" >"$KDIR.tmp/modules/$m.ko" && xz=$((xz + 1)) ;;
        *.ko.zst) zstd -dc "$f" >"$KDIR.tmp/modules/$m.ko" && xz=$((xz + 1)) ;;
        *) die "module $f: unknown compression" ;;
        esac
        # Dependencies from the .modinfo strings (the package has no modules.dep).
        deps=$(tr '\0' '\n' <"$KDIR.tmp/modules/$m.ko" | sed -n 's/^depends=//p' | head -n 1 | tr , ' ')
        for d in $deps; do
            case $loaded in *" $d "*) ;; *) die "module $m needs $d, which is not loaded before it" ;; esac
        done
        loaded="$loaded$m "
        echo "$m" >>"$KDIR.tmp/modules.load"
    done
    echo "$kver" >"$KDIR.tmp/version"
    echo "$LOCKED" | awk '{ print $3 "=" $4 }' >"$KDIR.tmp/package"
    echo "$LOCKED" >"$KDIR.tmp/lock"
    echo "$builtin" | sed 's/^ //' >"$KDIR.tmp/builtin"
    echo "$MODULES" >"$KDIR.tmp/modules.list"
    touch "$KDIR.tmp/.complete"
    rm -rf "$KDIR" "$work"
    mv "$KDIR.tmp" "$KDIR"
    n=$(wc -l <"$KDIR/modules.load")
    say "unpacked kernel $kver in $(ms_since "$t") ms: $n modules as .ko (decompressed: $xz)${builtin:+; built in:$builtin}"
}
if [ -n "$UPDATE_LOCK" ]; then
    update_lock
    exit 0
fi
if kernel_cached; then
    say "kernel $(cat "$KDIR/version") from the cache ($KDIR)"
else
    fetch_kernel
fi

# ---- 3. the initramfs ----------------------------------------------------------------
abs=""
for b in $EXTRA; do
    [ -f "$b" ] || die "extra binary $b: no such file"
    abs="$abs $(realpath "$b")"
done
EXTRA=$abs
# Skipped when nothing that goes into it changed since the last build.
# shellcheck disable=SC2086
inputs=$(stat -L -c '%n %s %Y' "$HERE/build.sh" "$HERE/init" "$HERE/vsock-cid.c" "$HERE/guest-bench.c" "$HERE/vsock-try.c" "$HERE/vsock-seq.c" "$BUSYBOX" "$SOCAT" $EXTRA \
    "$KDIR/.complete" "$KDIR/vmlinuz" 2>&1; echo "$MODULES")
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ] && [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$inputs" ]; then
    say "up to date: $OUT/vmlinuz $OUT/initrd.gz (kernel $(cat "$KDIR/version"))"
    exit 0
fi
rm -f "$OUT/.inputs"
t=$(date +%s%N)
say "building initramfs"
ROOT=$OUT/initramfs.tmp
rm -rf "$ROOT"
mkdir -p "$ROOT"
cd "$ROOT"
mkdir -p bin dev etc lib/modules proc root sys tmp run usr
chmod 1777 tmp
ln -s bin sbin
ln -s ../bin usr/bin
ln -s ../bin usr/sbin
# The kernel opens /dev/console before /init; without the node it warns and
# /init gets no stdout until it mounts devtmpfs (it redirects then anyway).
[ "$(id -u)" = 0 ] && mknod -m 600 dev/console c 5 1

cp "$BUSYBOX" bin/busybox
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -s busybox "bin/$a"
done

# add_elf SRC: copy SRC into /bin (a shared library, *.so: into /lib, where
# hvsim-run in /bin finds its interposer as ../lib/libhvsim-preload.so); if it
# is dynamically linked, also its ELF interpreter and every library ldd names,
# at the same paths as on this host.
add_elf() {
    src=$1
    name=$(basename "$src")
    [ -f "$src" ] || die "$src: no such file"
    case $name in *.so) dir=lib ;; *) dir=bin ;; esac
    rm -f "$dir/$name"
    cp -L "$src" "$dir/$name"
    chmod 755 "$dir/$name"
    libs=$(ldd "$src" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p') || true
    [ -n "$libs" ] || return 0
    case " $EXTRA " in *" $src "*) say "note: $src is dynamically linked: adding its libraries" ;; esac
    for l in $libs; do
        mkdir -p ".$(dirname "$l")"
        [ -e ".$l" ] || cp -L "$l" ".$l"
    done
}
add_elf "$SOCAT"
# vsock-cid: the guest's own CID, for tests (built here, never run here).
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -s -o "$OUT/vsock-cid.tmp" "$HERE/vsock-cid.c"
mv "$OUT/vsock-cid.tmp" bin/vsock-cid
# hvsim-guest-bench: the guest half of `make bench TARGET=qemu` (vsock and TCP).
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -s -o "$OUT/guest-bench.tmp" "$HERE/guest-bench.c"
mv "$OUT/guest-bench.tmp" bin/hvsim-guest-bench
# vsock-try: one AF_VSOCK socket driven step by step (closes, resets, retries).
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -s -o "$OUT/vsock-try.tmp" "$HERE/vsock-try.c"
mv "$OUT/vsock-try.tmp" bin/vsock-try
# vsock-seq: an unmodified SOCK_SEQPACKET program (the seqpacket tests, issue 15).
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -s -o "$OUT/vsock-seq.tmp" "$HERE/vsock-seq.c"
mv "$OUT/vsock-seq.tmp" bin/vsock-seq
for b in $EXTRA; do
    add_elf "$b"
done

for m in $(cat "$KDIR/modules.load"); do
    cp "$KDIR/modules/$m.ko" lib/modules/
done
cp "$KDIR/modules.load" etc/hvsim-modules
echo "root:x:0:0:root:/root:/bin/sh" >etc/passwd
echo "root:x:0:" >etc/group
echo "hvsim-guest" >etc/hostname
cp "$HERE/init" init
chmod 755 init

find . | LC_ALL=C sort >"$OUT/initrd.list"
"$BUSYBOX" cpio -o -H newc -R 0:0 <"$OUT/initrd.list" >"$OUT/initrd.cpio" 2>"$OUT/initrd.cpio.log" ||
    die "cpio failed: $(cat "$OUT/initrd.cpio.log")"
cd "$OUT"
rm -rf "$ROOT" initrd.list initrd.cpio.log
gzip -6n <initrd.cpio >initrd.gz.tmp
rm -f initrd.cpio
mv initrd.gz.tmp initrd.gz
cp "$KDIR/vmlinuz" vmlinuz.tmp
mv vmlinuz.tmp vmlinuz
# shellcheck disable=SC2116,SC2086
extras=$(echo $EXTRA)
say "built initrd.gz ($(($(wc -c <initrd.gz) / 1024)) KiB) in $(ms_since "$t") ms${extras:+; extra binaries: $extras}"
echo "$inputs" >"$OUT/.inputs"
say "done in $(ms_since "$START") ms: $OUT/vmlinuz $OUT/initrd.gz (kernel $(cat "$KDIR/version"))"
