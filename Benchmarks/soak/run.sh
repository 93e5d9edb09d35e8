#!/usr/bin/env bash
# Hostile soak (issue 20): `samsa broker` (release) under mixed hostile traffic for SECONDS beside an
# idempotent acks=all producer and a consumer group (confluent-kafka); see hostile_soak.py.
#   Benchmarks/soak/run.sh [SECONDS] [BASELINE_SECONDS] [RATE]     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
baseline=${2:-60}
rate=${3:-2000}
source scripts/setup.sh
require_swift
require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}"
require_python_packages
swift build -c release --product samsa 2>&1 | grep -E "error|warning:|Build" | tail -3
work=$(mktemp -d /tmp/samsa-soak.XXXXXX)
echo "soak: work directory $work (broker.log there)"
"$SAMSA_PYTHON" Benchmarks/soak/hostile_soak.py .build/release/samsa "$work" --seconds "$seconds" --baseline "$baseline" --rate "$rate" \
    2>"$work/clients.log"
