"""Topic and broker config changes through a real client's admin API, for AdminConfigsInteropTests.

    admin_configs.py BOOTSTRAP TOPIC

Runs with whichever client its interpreter's venv holds (confluent-kafka, else kafka-python): creates
TOPIC, sets configs incrementally (where the client has it) and as a whole set, describes them and checks
value and source, asks for an unknown config and an invalid value (each must be refused with
INVALID_CONFIG and change nothing), and sets a dynamic broker config. Prints one JSON
object: the client, its version and per step "ok", "n/a" or the error. Every call has a deadline.
"""
import json
import sys
import traceback

STEPS = {}


def step(name):
    def wrap(function):
        try:
            result = function()
            STEPS[name] = "ok" if result is None else result
        except Exception as error:  # reported, not raised: every step runs
            STEPS[name] = f"error: {type(error).__name__}: {error}"
            traceback.print_exc(file=sys.stderr)
        return function
    return wrap


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def confluent(bootstrap, topic):
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def described():
        resource = ConfigResource("topic", topic)
        return admin.describe_configs([resource], request_timeout=10)[resource].result(timeout=15)

    @step("create_topic")
    def _():
        for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
            future.result(timeout=15)

    @step("incremental_alter")
    def _():
        if not hasattr(admin, "incremental_alter_configs"):
            return "n/a"
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        resource = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("retention.ms", "12345", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.bytes", "65536", incremental_operation=AlterConfigOpType.SET),
        ])
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=15)
        configs = described()
        check(configs["retention.ms"].value == "12345", f"retention.ms: {configs['retention.ms']}")
        check(configs["segment.bytes"].value == "65536", f"segment.bytes: {configs['segment.bytes']}")
        check(configs["retention.ms"].source == confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              f"source: {configs['retention.ms'].source}")

    @step("alter_whole_set")
    def _():
        resource = ConfigResource("topic", topic, set_config={"max.message.bytes": "2048"})
        for future in admin.alter_configs([resource]).values():
            future.result(timeout=15)
        configs = described()
        check(configs["max.message.bytes"].value == "2048", f"max.message.bytes: {configs['max.message.bytes']}")
        # The whole set replaced: what the incremental step set is gone.
        check(configs["retention.ms"].source != confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              f"retention.ms still set: {configs['retention.ms']}")

    @step("refused")
    def _():
        for name, value in (("no.such.config", "1"), ("segment.bytes", "1")):
            resource = ConfigResource("topic", topic, set_config={name: value})
            try:
                for future in admin.alter_configs([resource]).values():
                    future.result(timeout=15)
                raise AssertionError(f"{name}={value} was accepted")
            except confluent_kafka.KafkaException as error:
                check(error.args[0].name() == "INVALID_CONFIG", f"{name}={value}: {error}")
        check(described()["max.message.bytes"].value == "2048", "a refused change changed something")

    @step("broker_default")
    def _():
        if not hasattr(admin, "incremental_alter_configs"):
            return "n/a"
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        # librdkafka refuses an empty resource name, so this broker's own ("0") rather than the default.
        resource = ConfigResource("broker", "0", incremental_configs=[
            ConfigEntry("log.retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET)])
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=15)
        configs = described()
        check(configs["retention.ms"].value == "86400000", f"retention.ms: {configs['retention.ms']}")
        check(configs["retention.ms"].source == confluent_kafka.admin.ConfigSource.DYNAMIC_BROKER_CONFIG.value,
              f"source: {configs['retention.ms'].source}")

    return "confluent-kafka", confluent_kafka.version()[0]


def kafka_python(bootstrap, topic):
    import kafka
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    modern = int(kafka.__version__.split(".")[0]) >= 3  # dict answers; alter_configs is incremental

    def described():
        if modern:
            response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
            return {name: entry["value"] for name, entry in response["topic"][topic].items()}
        response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        response = response[0] if isinstance(response, list) else response
        return {entry[0]: entry[1] for entry in response.resources[0][4]}

    def alter(configs):
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)
        return repr(admin.alter_configs([resource], raise_on_unknown=False) if modern else admin.alter_configs([resource]))

    @step("create_topic")
    def _():
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

    STEPS["incremental_alter"] = "n/a"

    @step("alter_whole_set")
    def _():
        alter({"max.message.bytes": "2048"})
        check(described()["max.message.bytes"] == "2048", f"configs: {described()}")

    @step("refused")
    def _():
        for configs in ({"no.such.config": "1"}, {"segment.bytes": "1"}):
            text = alter(configs)
            check("40" in text or "InvalidConfig" in text, f"{configs} accepted: {text}")
        check(described()["max.message.bytes"] == "2048", "a refused change changed something")

    STEPS["broker_default"] = "n/a"
    return "kafka-python", kafka.__version__


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    try:
        import confluent_kafka  # noqa: F401
        name, version = confluent(bootstrap, topic)
    except ImportError:
        name, version = kafka_python(bootstrap, topic)
    print(json.dumps({"client": name, "version": version, "steps": STEPS}))


main()
