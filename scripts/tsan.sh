#!/usr/bin/env bash
# ThreadSanitizer run of the storage, connection, broker and client suites: builds them with
# --sanitize=thread in .build-tsan, runs them, and fails on any TSan report from the test process or
# the `samsa` processes it starts. With arguments, runs `swift test` with those instead of the suites.
#
# Synchronization.Mutex's contended path is invisible to TSan (its slow path lives in the
# uninstrumented libswiftSynchronization.so and hands the lock over in the kernel), which shows as
# false races inside `withLock` bodies: scripts/tsan-mutex-shim.c, preloaded, tells TSan about those
# lock handovers and hides nothing else. scripts/tsan-suppressions.txt holds the remaining,
# individually explained suppressions.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_test_environment

build=.build-tsan
start=$SECONDS
swift build --build-tests --sanitize=thread --build-path "$build" 2>&1 | grep -E "error:|Build complete" | grep -v "/$build/checkouts/" || true
[ -x "$build/debug/samsa" ] || { echo "tsan.sh: build failed" >&2; exit 1; }
echo "tsan.sh: built in $((SECONDS - start)) s"

clang="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
"$clang" -O1 -fPIC -shared -Wall -Werror -o "$build/tsan-mutex-shim.so" scripts/tsan-mutex-shim.c -ldl

# Reports go to one file per process (the test process and every `samsa` it starts).
reports=$(mktemp -d /tmp/samsa-tsan.XXXXXX)
export TSAN_OPTIONS="suppressions=$PWD/scripts/tsan-suppressions.txt log_path=$reports/report history_size=4 ${TSAN_OPTIONS:-}"
export LD_PRELOAD="$PWD/$build/tsan-mutex-shim.so${LD_PRELOAD:+:$LD_PRELOAD}"
# ConnectionFloodTests are left out: they bound the broker's memory and descriptors by the clock and
# by RSS, which TSan's shadow memory and slowdown inflate (they failed on that, not on a report).
if [ "$#" -eq 0 ]; then
    set -- --experimental-maximum-parallelization-width 4 \
        --filter "SamsaStorageTests|SamsaConnectionTests|SamsaBrokerTests|SamsaClientTests" --skip ConnectionFloodTests
fi
start=$SECONDS
status=0
swift test --skip-build --sanitize=thread --build-path "$build" --disable-xctest "$@" >"$reports/tests.log" 2>&1 || status=$?
grep -E "^✘|Test run with" "$reports/tests.log" || tail -n 20 "$reports/tests.log"
echo "tsan.sh: tests ran in $((SECONDS - start)) s"

found=$(cat "$reports"/report.* 2>/dev/null | grep -c "^WARNING: ThreadSanitizer" || true)
if [ "$found" -gt 0 ]; then
    grep -h "^SUMMARY: ThreadSanitizer" "$reports"/report.* | sort | uniq -c | sort -rn
    echo "tsan.sh: $found ThreadSanitizer reports; full reports in $reports" >&2
    exit 1
fi
[ "$status" -eq 0 ] || { echo "tsan.sh: tests failed; their output is in $reports/tests.log" >&2; exit "$status"; }
rm -rf "$reports"
echo "tsan.sh: no ThreadSanitizer reports"
