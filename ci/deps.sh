#!/bin/sh
# deps.sh PKG...: install the Debian packages of this list that are missing.
# Runs `apt-get update` once, and only when something is missing, so a machine
# that has everything pays nothing. CI starts from the base image with no terminal.
set -eu
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing Debian packages:$missing (run as root, or install them: apt-get install$missing)" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2
