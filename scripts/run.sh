#!/usr/bin/env bash
# Samsa's main job on an embedded default: builds the `samsa` command (release), writes a segment of
# 100,000 synthetic JSON events in LZ4-compressed batches into a temporary directory, and dumps it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_swift
require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}"

swift build -c release --product samsa 2>&1 | grep -E "error|warning:|Build" || true
samsa=$(swift build -c release --show-bin-path)/samsa
dir=${1:-$(mktemp -d)}
segment="$dir/00000000000000000000.log"
"$samsa" generate-log "$segment" --batches 100 --records-per-batch 1000 --record-size 200 --compression lz4
"$samsa" dump-log "$segment" | tail -n 3
"$samsa" dump-log --records "$segment" | head -n 3
echo "segment kept in $dir"
