# Sourced by scripts/test.sh and scripts/run.sh: makes sure this machine has what Samsa builds and
# tests with. As root it installs what is missing; otherwise it names the packages and stops.
#   require_debian_packages PKG...   Debian packages (apt-get)
#   require_python_packages          a virtualenv in .build-python with the interop tests' packages
set -euo pipefail

require_debian_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

# kafka-python, confluent-kafka (librdkafka), aiokafka and kazoo are the independent implementations the interop tests compare against.
PYTHON_PACKAGES=(kafka-python==3.0.12 lz4==4.4.5 zstandard==0.25.0 kazoo==2.11.0 confluent-kafka==2.16.1 aiokafka==0.14.0 cramjam==2.14.0)

require_python_packages() {
    command -v python3 >/dev/null || require_debian_packages python3 python3-venv
    local venv=.build-python
    if ! "$venv/bin/python" -c "import kafka, lz4.frame, zstandard, kazoo, confluent_kafka, aiokafka, cramjam" 2>/dev/null; then
        echo "setup: creating $venv with ${PYTHON_PACKAGES[*]}"
        python3 -m venv "$venv" || { require_debian_packages python3-venv && python3 -m venv "$venv"; }
        "$venv/bin/python" -m pip install -q "${PYTHON_PACKAGES[@]}"
    fi
    export SAMSA_PYTHON="$PWD/$venv/bin/python"
}

require_swift() {
    command -v swift >/dev/null || { echo "setup: Swift 6.1 or later is required (swift not on PATH)" >&2; exit 1; }
}

SAMSA_DEBIAN_PACKAGES=(pkg-config liblz4-dev libzstd-dev)
# The coordination tests start real ZooKeeper servers (Debian's 3.8, run on the JVM already present).
# The broker tests drive `samsa broker` with kcat (librdkafka 2.0.2).
SAMSA_TEST_DEBIAN_PACKAGES=(zookeeper kcat)
# The benchmarks also compare against SQLite (GRDB links the system library) and NATS JetStream (Benchmarks/broker).
SAMSA_BENCHMARK_DEBIAN_PACKAGES=(libsqlite3-dev nats-server)

# Everything the tests need (scripts/test.sh, scripts/tsan.sh): Swift, the Debian packages, the test
# venv, and one venv per Kafka client version for ClientMatrixTests (cached between runs).
require_test_environment() {
    require_swift
    require_debian_packages "${SAMSA_DEBIAN_PACKAGES[@]}" "${SAMSA_TEST_DEBIAN_PACKAGES[@]}"
    require_python_packages
    source scripts/client-matrix.sh
    require_client_matrix
}
