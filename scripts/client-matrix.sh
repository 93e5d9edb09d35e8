# Sourced by scripts/setup.sh: the Kafka client versions the interop matrix runs (ClientMatrixTests),
# each in a virtualenv of its own, kept in a cache outside the work tree so that a fresh clone (CI)
# reuses them: a venv is made once per machine and client version.
#   require_client_matrix   makes the missing venvs; exports SAMSA_CLIENT_MATRIX="name=python ..."
set -euo pipefail

# name|pip requirements. The versions people have installed (shared/kafka-clients.md); each
# confluent-kafka wheel bundles its own librdkafka. aiokafka 0.8.1 imports kafka.conn, so it needs
# kafka-python 2.0.2 beside it.
SAMSA_CLIENT_MATRIX_SPECS=(
    "confluent-kafka-2.0.2|confluent-kafka==2.0.2"
    "confluent-kafka-2.3.0|confluent-kafka==2.3.0"
    "confluent-kafka-2.6.1|confluent-kafka==2.6.1"
    "confluent-kafka-2.8.2|confluent-kafka==2.8.2"
    "confluent-kafka-2.10.1|confluent-kafka==2.10.1"
    "confluent-kafka-2.12.2|confluent-kafka==2.12.2"
    "confluent-kafka-2.14.2|confluent-kafka==2.14.2"
    "confluent-kafka-2.16.2|confluent-kafka==2.16.2"
    "kafka-python-2.0.2|kafka-python==2.0.2"
    "kafka-python-2.2.21|kafka-python==2.2.21"
    "kafka-python-3.0.12|kafka-python==3.0.12"
    "aiokafka-0.8.1|aiokafka==0.8.1 kafka-python==2.0.2"
    "aiokafka-0.10.0|aiokafka==0.10.0"
    "aiokafka-0.12.0|aiokafka==0.12.0"
    "aiokafka-0.14.0|aiokafka==0.14.0"
)

client_matrix_cache() {
    echo "${SAMSA_CLIENT_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/samsa/client-venvs}"
}

# Makes (at most four at once) the venvs that are missing or incomplete; a venv is complete once its
# `.ready` marker, written after pip succeeded, names exactly its requirements.
require_client_matrix() {
    command -v python3 >/dev/null || require_debian_packages python3 python3-venv
    local cache pids=() entries=() spec name requirements venv
    cache=$(client_matrix_cache)
    mkdir -p "$cache"
    for spec in "${SAMSA_CLIENT_MATRIX_SPECS[@]}"; do
        name=${spec%%|*}
        requirements=${spec#*|}
        venv="$cache/$name"
        entries+=("$name=$venv/bin/python")
        if [ -f "$venv/.ready" ] && [ "$(cat "$venv/.ready")" = "$requirements" ]; then
            continue
        fi
        echo "setup: making client venv $name ($requirements)"
        (
            rm -rf "$venv"
            python3 -m venv "$venv" >/dev/null
            # shellcheck disable=SC2086 # the requirements are words
            "$venv/bin/python" -m pip install -q --disable-pip-version-check $requirements >"$venv.log" 2>&1
            echo "$requirements" >"$venv/.ready"
        ) &
        pids+=($!)
        if [ ${#pids[@]} -ge 4 ]; then
            wait "${pids[0]}" || { echo "setup: client venv failed (see $cache/*.log)" >&2; exit 1; }
            pids=("${pids[@]:1}")
        fi
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || { echo "setup: client venv failed (see $cache/*.log)" >&2; exit 1; }
    done
    SAMSA_CLIENT_MATRIX="${entries[*]}"
    export SAMSA_CLIENT_MATRIX
}
