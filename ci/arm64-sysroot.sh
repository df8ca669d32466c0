#!/bin/sh
# SPDX-License-Identifier: MIT
# arm64-sysroot.sh DIR PKG...: a private arm64 sysroot for `make cross-arm64`.
# It downloads the arm64 builds of the packages (and nothing they depend on)
# with apt-get through a configuration of its own under DIR/apt: its own
# sources list, state, cache, an empty dpkg status and arm64 as the only
# architecture; then unpacks them with dpkg-deb -x into DIR/sysroot. The
# machine's apt architectures and sources are never touched (no dpkg
# --add-architecture), and nothing is installed.
set -eu
mkdir -p "$1"
dir=$(cd "$1" && pwd) # apt reads a relative Dir:: setting below /etc/apt
shift
apt="$dir/apt"
mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$dir/debs" "$dir/sysroot"
: >"$apt/status"
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
key=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt/sources.list" <<END
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian $suite main
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian $suite-updates main
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian-security $suite-security main
END
# As root, apt would hand the downloads to the _apt user, who cannot write here.
sandbox=""
[ "$(id -u)" = 0 ] && sandbox="-o APT::Sandbox::User=root"
apt_get() {
    # shellcheck disable=SC2086
    apt-get -q -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts="$apt/parts" \
        -o Dir::Etc::Preferences="$apt/parts/none" -o Dir::Etc::PreferencesParts="$apt/parts" \
        -o Dir::State="$apt/state" -o Dir::State::status="$apt/status" -o Dir::Cache="$apt/cache" \
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 $sandbox "$@"
}
if ! apt_get update >"$apt/update.log" 2>&1; then
    echo "arm64-sysroot.sh: apt-get update of the private arm64 lists failed (no route to deb.debian.org?):" >&2
    tail -5 "$apt/update.log" >&2
    exit 1
fi
rm -f "$dir"/debs/*.deb
pkgs=""
for p in "$@"; do pkgs="$pkgs $p:arm64"; done
# shellcheck disable=SC2086
(cd "$dir/debs" && apt_get download $pkgs)
for d in "$dir"/debs/*.deb; do
    dpkg-deb -x "$d" "$dir/sysroot"
done
touch "$dir/sysroot/.done"
