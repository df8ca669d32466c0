#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/ci/ci.sh STEP [ARG]: the steps of hvsim's CI recipes
# (github-actions.yml, Containerfile), run from the repository's top folder.
# The same steps run as a script in `make test` (harness/test_ci_recipe.py).
#
#   deps              the Debian packages the build and the suites need (only the missing ones)
#   build             make all: libhvsim, hvsimd, hvsimctl, hvsim-run, the agent
#   daemon-start      hvsimd in $HVSIM_CI_DIR for the steps after it (ready when the step ends)
#   user-tests [DIR]  your pytest suite (default $USER_TESTS, else examples/pytest-suite) with
#                     hvsim's fixtures; hvsim_session_host is the daemon of daemon-start
#   daemon-stop       SIGTERM that daemon
#   conformance [I/N] the conformance catalogue against the simulator (shard I of N) into
#                     $HVSIM_CI_OUT/shards/shard-I (unsharded: $HVSIM_CI_OUT)
#   merge             join $HVSIM_CI_OUT/shards/*/results-sim.json into $HVSIM_CI_OUT/merged
#   all               deps, build, daemon-start, user-tests, daemon-stop, conformance (one machine)
#
# Environment: MAKE_ARGS (e.g. SANITIZE=address), HVSIM_BIN (default build/bin),
# HVSIM_CI_DIR (default /tmp/hvsim-ci), HVSIM_CI_OUT (default build/conformance), USER_TESTS.
set -eu
step=${1:-help}
[ $# -gt 0 ] && shift
BIN=${HVSIM_BIN:-$PWD/build/bin}
CI_DIR=${HVSIM_CI_DIR:-/tmp/hvsim-ci}
OUT=${HVSIM_CI_OUT:-build/conformance}
PY=/usr/bin/python3
export PYTHONPATH="$PWD/sim/python${PYTHONPATH:+:$PYTHONPATH}"
export HVSIM_BIN="$BIN"

case "$step" in
deps)
    make ${MAKE_ARGS:-} deps
    sh ci/deps.sh python3 python3-pytest ;;
build)
    make ${MAKE_ARGS:-} all ;;
daemon-start)
    $PY -m hvsim start-daemon --dir "$CI_DIR" --bin "$BIN" ;;
user-tests)
    suite=${1:-${USER_TESTS:-examples/pytest-suite}}
    HVSIM_SESSION_DIR="$CI_DIR" $PY -m pytest -q -p no:cacheprovider -p hvsim.pytest_plugin "$suite" ;;
daemon-stop)
    $PY -m hvsim stop-daemon --dir "$CI_DIR" ;;
conformance)
    if [ $# -gt 0 ]; then
        i=${1%/*}
        $PY conformance/run.py --target sim --bin "$BIN" --quiet --shard "$1" --out "$OUT/shards/shard-$i"
    else
        $PY conformance/run.py --target sim --bin "$BIN" --quiet --out "$OUT"
    fi ;;
merge)
    $PY conformance/report.py --merge --out "$OUT/merged" "$OUT"/shards/*/results-sim.json ;;
all)
    sh "$0" deps
    sh "$0" build
    sh "$0" daemon-start
    status=0
    sh "$0" user-tests || status=$?
    sh "$0" daemon-stop
    [ $status -eq 0 ] || exit $status
    sh "$0" conformance ;;
help|-h|--help)
    sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
    echo "ci.sh: unknown step '$step' (ci.sh help lists them)" >&2
    exit 2 ;;
esac
