"""A real client's AdminClient against Samsa: create a topic, add partitions, check the count in
metadata, delete it, check it is gone. Prints one JSON object: {"client", "version", "steps": {step:
"ok" | "error: ..."}}. Usage: topic_admin.py BOOTSTRAP TOPIC REPLICATION_FACTOR"""
import json
import sys
import time

bootstrap, topic, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps = {}


def step(name, action):
    try:
        result = action()
        steps[name] = "ok" if result is None else str(result)
    except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
        steps[name] = "error: %r" % (error,)


def eventually(check, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value is True:
            return None
        if time.time() > deadline:
            raise AssertionError(value)
        time.sleep(0.2)


try:
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    client, version = "confluent-kafka", confluent_kafka.version()[0]
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def wait(futures):
        for future in futures.values():
            future.result(timeout=20)

    def count():
        topics = admin.list_topics(timeout=10).topics
        return len(topics[topic].partitions) if topic in topics and topics[topic].error is None else None

    step("create_topic", lambda: wait(admin.create_topics([NewTopic(topic, 2, factor)])))
    step("create_partitions_validate_only", lambda: wait(admin.create_partitions([NewPartitions(topic, 4)], validate_only=True)))
    step("count_unchanged", lambda: eventually(lambda: count() == 2 or count()))
    step("create_partitions", lambda: wait(admin.create_partitions([NewPartitions(topic, 4)])))
    step("count_grown", lambda: eventually(lambda: count() == 4 or count()))

    def fewer():
        try:
            wait(admin.create_partitions([NewPartitions(topic, 3)]))
        except Exception as error:  # noqa: BLE001
            code = error.args[0].code() if error.args and hasattr(error.args[0], "code") else None
            return None if code == confluent_kafka.KafkaError.INVALID_PARTITIONS else "wrong error: %r" % (error,)
        return "error: accepted a lower count"

    step("create_partitions_fewer", fewer)
    step("delete_topic", lambda: wait(admin.delete_topics([topic])))
    step("gone", lambda: eventually(lambda: count() is None or count()))
except ImportError:
    import kafka
    from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic
    from kafka.errors import InvalidPartitionsError

    client, version = "kafka-python", kafka.__version__
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def count():
        # kafka-python 3 names the key "name", 2.x "topic".
        described = [t for t in admin.describe_topics([topic]) if t.get("topic", t.get("name")) == topic]
        return len(described[0]["partitions"]) if described and described[0]["error_code"] == 0 else None

    step("create_topic", lambda: admin.create_topics([NewTopic(topic, 2, factor)]) and None)
    step("create_partitions_validate_only", lambda: admin.create_partitions({topic: NewPartitions(4)}, validate_only=True) and None)
    step("count_unchanged", lambda: eventually(lambda: count() == 2 or count()))
    step("create_partitions", lambda: admin.create_partitions({topic: NewPartitions(4)}) and None)
    step("count_grown", lambda: eventually(lambda: count() == 4 or count()))

    def fewer():
        try:
            response = admin.create_partitions({topic: NewPartitions(3)})
        except InvalidPartitionsError:
            return None
        errors = [entry[1] for entry in getattr(response, "topic_errors", [])]
        return None if errors == [37] else "error: %r" % (response,)

    step("create_partitions_fewer", fewer)
    step("delete_topic", lambda: admin.delete_topics([topic]) and None)
    step("gone", lambda: eventually(lambda: count() is None or count()))

print(json.dumps({"client": client, "version": version, "steps": steps}))
