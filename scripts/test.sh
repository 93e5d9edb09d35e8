#!/usr/bin/env bash
# Samsa's test command: installs what the tests need, builds with zero warnings, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_swift
require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}"
require_python_packages

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

swift test --skip-build "$@"
