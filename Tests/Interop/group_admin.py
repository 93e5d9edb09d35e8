"""Consumer-group administration with a real client's admin API, for SamsaBrokerTests.

    group_admin.py BOOTSTRAP

With confluent-kafka (AdminClient) or else kafka-python (KafkaAdminClient), whichever imports:
commits offsets for an idle group, keeps a second group live (one subscribed consumer), then lists,
describes, reads offsets, deletes offsets (where the client has OffsetDelete) and deletes groups, and
reads the effect back. Prints one JSON object: each step's result, or "error: ..." for a step that raised.
"""
import json
import sys
import time

BOOTSTRAP = sys.argv[1]
TOPIC = "admin-groups"
IDLE, LIVE, NONE = "idle-group", "live-group", "no-such-group"


def code_name(error):
    """Kafka's error name (NONE for none) from either client's exception or error class."""
    if error is None or error == "OK":
        return "NONE"
    if isinstance(error, str):  # kafka-python 3: "OK" or the error class's name
        import kafka.errors
        return getattr(getattr(kafka.errors, error, None), "message", error)
    if isinstance(error, type) or hasattr(error, "errno"):  # kafka-python: an error class or instance
        name = getattr(error, "message", None) or type(error).__name__
        return "NONE" if name == "NO_ERROR" else name
    inner = error.args[0] if getattr(error, "args", None) else None
    if hasattr(inner, "name"):
        try:
            return inner.name()
        except TypeError:
            return str(inner.name)
    return type(error).__name__


def confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition, version
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import ConsumerGroupTopicPartitions

    out = {"client": "confluent-kafka", "version": version()[0] if isinstance(version(), tuple) else version()}
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(20)
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for index in range(6):
        producer.produce(TOPIC, value=b"v%d" % index, partition=index % 2)
    producer.flush(20)

    def offsets(group):
        result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(20)
        return {str(tp.partition): tp.offset for tp in result.topic_partitions if tp.topic == TOPIC}

    altered = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(IDLE, [TopicPartition(TOPIC, 0, 3), TopicPartition(TOPIC, 1, 2)])])[IDLE].result(20)
    out["alter"] = sorted([tp.partition, code_name(tp.error)] for tp in altered.topic_partitions)
    out["offsets"] = offsets(IDLE)

    live = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": LIVE, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    live.subscribe([TOPIC])
    deadline = time.time() + 30
    while not live.assignment() and time.time() < deadline:
        live.poll(0.2)
    listed = admin.list_consumer_groups().result(20)
    out["list"] = sorted([g.group_id, str(g.state).split(".")[-1]] for g in listed.valid if g.group_id in (IDLE, LIVE))
    described = admin.describe_consumer_groups([LIVE])[LIVE].result(20)
    out["describe"] = {
        "state": str(described.state).split(".")[-1],
        "members": len(described.members),
        "partitions": sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions),
    }
    futures = admin.delete_consumer_groups([IDLE, LIVE, NONE])
    deleted = {}
    for group, future in futures.items():
        try:
            future.result(20)
            deleted[group] = "NONE"
        except Exception as error:  # the client raises KafkaException carrying the broker's error
            deleted[group] = code_name(error)
    out["delete"] = deleted
    out["offsetsAfter"] = offsets(IDLE)
    out["listAfter"] = sorted(g.group_id for g in admin.list_consumer_groups().result(20).valid if g.group_id in (IDLE, LIVE))
    live.close()
    return out


def kafka_python():
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata

    out = {"client": "kafka-python", "version": kafka.__version__}
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for index in range(6):
        producer.send(TOPIC, value=b"v%d" % index, partition=index % 2)
    producer.flush()
    producer.close()
    modern = hasattr(admin, "delete_groups")  # kafka-python 3 renamed the group calls

    def offsets(group):
        if modern:
            result = admin.list_group_offsets({group: None})[group]
        else:
            result = admin.list_consumer_group_offsets(group)
        return {str(tp.partition): meta.offset for tp, meta in result.items() if tp.topic == TOPIC}

    committer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=IDLE, enable_auto_commit=False)
    committer.assign([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
    def meta(offset):
        try:
            return OffsetAndMetadata(offset, "", -1)
        except TypeError:  # kafka-python 2.0.2 has no leader epoch
            return OffsetAndMetadata(offset, "")
    committer.commit({TopicPartition(TOPIC, 0): meta(3), TopicPartition(TOPIC, 1): meta(2)})
    committer.close()
    out["offsets"] = offsets(IDLE)
    if modern:
        result = admin.delete_group_offsets(IDLE, [TopicPartition(TOPIC, 1)])
        out["deleteOffsets"] = {str(tp.partition): code_name(error) for tp, error in result.items()} if isinstance(result, dict) else repr(result)
        out["offsetsAfterDeleteOffsets"] = offsets(IDLE)

    live = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=LIVE, auto_offset_reset="earliest", enable_auto_commit=False)
    live.subscribe([TOPIC])
    deadline = time.time() + 30
    while not live.assignment() and time.time() < deadline:
        live.poll(timeout_ms=200)
    if modern:
        result = admin.delete_groups([IDLE, LIVE, NONE])
    else:
        result = admin.delete_consumer_groups([IDLE, LIVE, NONE])
    items = result.items() if isinstance(result, dict) else result
    out["delete"] = {group: code_name(error) for group, error in items}
    out["offsetsAfter"] = offsets(IDLE)
    live.close()
    admin.close()
    return out


def main():
    try:
        import confluent_kafka  # noqa: F401
        run = confluent
    except ImportError:
        run = kafka_python
    print(json.dumps(run()))


if __name__ == "__main__":
    main()
