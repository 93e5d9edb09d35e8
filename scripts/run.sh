#!/usr/bin/env bash
# Samsa's main job on an embedded default: builds the `samsa` command (release), produces 1,000,000
# JSON events of 100 B into a topic of a temporary data directory (every-append: each acknowledged
# record is on disk), reads them all back, and shows a few.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
require_swift
require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}"

swift build -c release --product samsa 2>&1 | grep -E "error|warning:|Build" || true
samsa=$(swift build -c release --show-bin-path)/samsa
dir=${1:-$(mktemp -d)}
"$samsa" perf produce --dir "$dir" --topic events --records 1000000 --record-size 100 --partitions 4 --flush every-append --compression lz4
"$samsa" perf consume --dir "$dir" --topic events
"$samsa" topics describe --dir "$dir" --topic events
"$samsa" consume --dir "$dir" --topic events --from-beginning --max-records 3 --json
"$samsa" verify "$dir"
echo "data directory kept in $dir"
