#!/bin/sh
# SPDX-License-Identifier: MIT
# vm-images/build.sh OUTDIR [EXTRA_BIN...]
#
# Builds the test guest for QEMU: OUTDIR/vmlinuz (Debian's cloud kernel, never
# installed on this machine) and OUTDIR/initrd.gz (busybox-static, socat with
# its shared libraries, the virtio/vsock modules, extra binaries, and /init).
# See vm-images/README.md.
#
# Environment:
#   EXTRA_BINS       more programs to put in the guest's /bin (space-separated;
#                    arguments after OUTDIR are added to them)
#   HVSIM_VM_CACHE   where the kernel and modules are kept between builds
#                    (default OUTDIR/cache); delete it to fetch again
#   HVSIM_VM_KERNEL_PKG  the kernel package to fetch (default: the one that
#                    linux-image-cloud-amd64 depends on)
#
# Nothing here runs socat: it is only copied. (The host's AF_VSOCK device is
# not ours to use; inside the guest it is.)
set -eu

usage() { echo "usage: $0 OUTDIR [EXTRA_BIN...]  (env: EXTRA_BINS, HVSIM_VM_CACHE)" >&2; exit 2; }
[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac

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
KDIR=$CACHE/kernel

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
sh "$REPO/ci/deps.sh" qemu-system-x86 busybox-static socat
BUSYBOX=$(command -v busybox) || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "busybox not found after installing busybox-static"
SOCAT=$(command -v socat) || die "socat not found after installing it"

# ---- 2. the kernel and modules (cached) ----------------------------------------------
kernel_cached() {
    [ -f "$KDIR/.complete" ] && [ -f "$KDIR/vmlinuz" ] && [ "$(cat "$KDIR/modules.list" 2>/dev/null)" = "$MODULES" ]
}

resolve_kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}

apt_update() {
    [ "$(id -u)" = 0 ] || die "Debian's package lists are missing or stale and only root can run apt-get update"
    say "apt-get update (the package lists are missing or stale)"
    apt-get update -q >&2
}

fetch_kernel() {
    work=$CACHE/fetch.tmp
    rm -rf "$work" "$KDIR.tmp"
    mkdir -p "$work/deb" "$KDIR.tmp/modules"

    pkg=${HVSIM_VM_KERNEL_PKG:-$(resolve_kernel_pkg)}
    if [ -z "$pkg" ]; then
        apt_update
        pkg=$(resolve_kernel_pkg)
        [ -n "$pkg" ] || die "cannot resolve the package that linux-image-cloud-amd64 depends on (apt-cache depends)"
    fi
    t=$(date +%s%N)
    say "downloading $pkg (about 27 MB; apt-get download, not installed)"
    # The sandbox user _apt cannot write to a root-owned folder: download as ourselves.
    if ! (cd "$work/deb" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg" >&2); then
        apt_update
        (cd "$work/deb" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg" >&2) ||
            die "apt-get download $pkg failed"
    fi
    deb=$(ls "$work/deb"/*.deb)
    say "downloaded $(basename "$deb") in $(ms_since "$t") ms"

    t=$(date +%s%N)
    say "unpacking $(basename "$deb") (dpkg -x)"
    dpkg -x "$deb" "$work/root"
    vmlinuz=$(ls "$work/root/boot"/vmlinuz-* 2>/dev/null | head -n 1)
    [ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $pkg"
    kver=${vmlinuz##*/vmlinuz-}
    mdir=$work/root/lib/modules/$kver
    [ -d "$mdir" ] || mdir=$work/root/usr/lib/modules/$kver
    [ -d "$mdir" ] || die "no lib/modules/$kver in $pkg"
    cp "$vmlinuz" "$KDIR.tmp/vmlinuz"
    cp "$work/root/boot/config-$kver" "$KDIR.tmp/config" 2>/dev/null || true

    loaded=" "
    builtin=""
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
        [ -n "$f" ] || die "module $m is neither built in nor in $pkg"
        case $f in
        *.ko) cp "$f" "$KDIR.tmp/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$KDIR.tmp/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$KDIR.tmp/modules/$m.ko" ;;
        *.ko.zst) zstd -dc "$f" >"$KDIR.tmp/modules/$m.ko" ;;
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
    echo "$pkg" >"$KDIR.tmp/package"
    echo "$builtin" | sed 's/^ //' >"$KDIR.tmp/builtin"
    echo "$MODULES" >"$KDIR.tmp/modules.list"
    touch "$KDIR.tmp/.complete"
    rm -rf "$KDIR" "$work"
    mv "$KDIR.tmp" "$KDIR"
    n=$(wc -l <"$KDIR/modules.load")
    say "unpacked kernel $kver in $(ms_since "$t") ms: $n modules as .ko${builtin:+; built in:$builtin}"
}

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
inputs=$(stat -L -c '%n %s %Y' "$HERE/build.sh" "$HERE/init" "$HERE/vsock-cid.c" "$HERE/guest-bench.c" "$BUSYBOX" "$SOCAT" $EXTRA \
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

# add_elf SRC: copy SRC into /bin; if it is dynamically linked, also its ELF
# interpreter and every library ldd names, at the same paths as on this host.
add_elf() {
    src=$1
    name=$(basename "$src")
    [ -f "$src" ] || die "$src: no such file"
    rm -f "bin/$name"
    cp -L "$src" "bin/$name"
    chmod 755 "bin/$name"
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
