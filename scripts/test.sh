#!/usr/bin/env bash
# Samsa's test command: installs what the tests need, builds with zero warnings, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_test_environment

# Our own code must build without a warning (dependencies' warnings are theirs).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift build --build-tests >"$log" 2>&1 || status=$?
grep -E "error:|warning:|Build complete" "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    echo "test.sh: build failed" >&2
    exit 1
fi
if grep -qE "^$PWD/(Sources|Tests)/.*warning:" "$log"; then
    echo "test.sh: the build has warnings (above); Samsa builds without any" >&2
    exit 1
fi

# Every test is Swift Testing; skipping XCTest's empty pass keeps the real summary last.
# One run of everything: no test blocks Swift's cooperative pool (the library's file work runs on
# its own queues, and test bodies that block -- disk-heavy storage, torture and tool tests, child
# processes, semaphores -- run off it with the `.offCooperativePool` trait of SamsaTestSupport), so the
# timing-sensitive coordination and broker tests get the pool's threads while the rest runs.
# At most 12 tests at once: the broker tests start brokers, clients and child processes, and all of
# them at once held 1,400+ descriptors, past which Foundation's Process.run() over-reads
# /proc/self/fd and crashes the test process (swift-corelibs-foundation #5472).
# With arguments, one run with exactly those.
results=$(mktemp)
trap 'rm -f "$log" "$results"' EXIT
status=0
if [ "$#" -gt 0 ]; then
    swift test --skip-build --disable-xctest "$@" 2>&1 | tee "$results" || status=$?
else
    swift test --skip-build --disable-xctest --experimental-maximum-parallelization-width 12 2>&1 | tee "$results" || status=$?
fi
total=$(grep -oE "Test run with [0-9]+ tests?" "$results" | grep -oE "[0-9]+" | awk '{ sum += $1 } END { if (NR) print sum }')
failed=$(grep -cE "^✘ Test [^r].* failed" "$results" || true)
if [ -z "$total" ]; then
    echo "test.sh: swift test printed no summary" >&2
    exit 1
fi
echo "swift-testing: $((total - failed)) passed, $failed failed"
exit "$status"
