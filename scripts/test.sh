#!/usr/bin/env bash
# Samsa's test command: installs what the tests need, builds with zero warnings, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_swift
require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}" "${SAMSA_TEST_DEBIAN_PACKAGES[@]}"
require_python_packages
# One venv per Kafka client version for ClientMatrixTests, cached between runs (scripts/client-matrix.sh).
source scripts/client-matrix.sh
require_client_matrix

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
# The coordination tests measure protocol timing (read timeouts, session expiry, reconnects) against
# real ZooKeeper servers, and the broker (and client) tests drive servers whose requests run on Swift's cooperative
# pool against real clients with 10 s timeouts: each group runs on its own, so the CPU-heavy torture
# and storage tests (blocking work on that two-thread pool) cannot starve them. With arguments, one
# run with exactly those.
results=$(mktemp)
trap 'rm -f "$log" "$results"' EXIT
status=0
if [ "$#" -gt 0 ]; then
    swift test --skip-build --disable-xctest "$@" 2>&1 | tee "$results" || status=$?
else
    swift test --skip-build --disable-xctest --filter SamsaCoordinationTests 2>&1 | tee "$results" || status=$?
    # At most 12 of these at once: each test starts brokers, clients and child processes, and all of
    # them at once held 1,400+ descriptors, past which Foundation's Process.run() over-reads
    # /proc/self/fd and crashes the test process (swift-corelibs-foundation #5472).
    swift test --skip-build --disable-xctest --experimental-maximum-parallelization-width 12 \
        --filter "SamsaBrokerTests|SamsaProtocolTests|SamsaClientTests" 2>&1 | tee -a "$results" || status=$?
    swift test --skip-build --disable-xctest --skip "SamsaCoordinationTests|SamsaBrokerTests|SamsaProtocolTests|SamsaClientTests" 2>&1 | tee -a "$results" || status=$?
fi
total=$(grep -oE "Test run with [0-9]+ tests?" "$results" | grep -oE "[0-9]+" | awk '{ sum += $1 } END { if (NR) print sum }')
failed=$(grep -cE "^✘ Test [^r].* failed" "$results" || true)
if [ -z "$total" ]; then
    echo "test.sh: swift test printed no summary" >&2
    exit 1
fi
echo "swift-testing: $((total - failed)) passed, $failed failed"
exit "$status"
