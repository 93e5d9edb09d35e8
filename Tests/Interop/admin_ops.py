"""librdkafka's AdminClient through every everyday operation (bar security), each with its effect checked,
for AdminOperationsTests (a single broker and a 3-broker cluster).

    admin_ops.py BOOTSTRAP BROKERS

BROKERS is how many brokers the cluster has (the replication factor used). Steps the client version
lacks are "n/a". Prints one JSON object: the client, its version and per step "ok", "n/a" or the error.
Every call has a deadline; the script never waits unbounded.
"""
import json
import sys
import time
import traceback
import uuid

STEPS = {}
DEADLINE = 30


def step(name, needs=None):
    def wrap(function):
        if needs is not None and not needs:
            STEPS[name] = "n/a"
            return function
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


def until(what, condition, timeout=DEADLINE):
    """Polls `condition` until it holds; an error counts as "not yet" (a broker may not have applied a
    change coordination already shows: clients retry such errors)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception as error:  # noqa: BLE001
            value = None
            print(f"until {what}: {error}", file=sys.stderr)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def results(futures):
    return {key: future.result(timeout=DEADLINE) for key, future in futures.items()}


def main():
    bootstrap, brokers = sys.argv[1], int(sys.argv[2])
    import confluent_kafka
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ops-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    has = lambda name: hasattr(admin, name)  # noqa: E731

    def partitions():
        return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)

    @step("describe_cluster", has("describe_cluster"))
    def _():
        described = admin.describe_cluster(request_timeout=10).result(timeout=DEADLINE)
        check(len(described.nodes) == brokers, f"nodes: {described.nodes}")
        check(described.controller is not None, "no controller")

    @step("create_topic")
    def _():
        results(admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=brokers)]))
        until("the topic has leaders", lambda: all(p.leader >= 0 for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()))

    @step("list_topics")
    def _():
        check(topic in admin.list_topics(timeout=10).topics, "the new topic is not listed")

    @step("describe_topics", has("describe_topics"))
    def _():
        from confluent_kafka import TopicCollection
        described = results(admin.describe_topics(TopicCollection([topic]), request_timeout=10))
        check(len(described[topic].partitions) == 2, f"{described}")

    @step("create_partitions")
    def _():
        results(admin.create_partitions([NewPartitions(topic, 4)]))
        until("four partitions are listed", lambda: partitions() == 4)
        try:
            results(admin.create_partitions([NewPartitions(topic, 3)]))
            raise AssertionError("fewer partitions were accepted")
        except confluent_kafka.KafkaException as error:
            check(error.args[0].name() == "INVALID_PARTITIONS", f"{error}")
        check(partitions() == 4, "a refused change changed the count")

    @step("alter_and_describe_configs")
    def _():
        resource = ConfigResource("topic", topic, set_config={"retention.ms": "3600000"})
        results(admin.alter_configs([resource]))
        described = results(admin.describe_configs([ConfigResource("topic", topic)], request_timeout=10))
        entries = next(iter(described.values()))
        check(entries["retention.ms"].value == "3600000", f"{entries['retention.ms']}")

    @step("produce")
    def _():
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
        errors = []
        for n in range(100):
            producer.produce(topic, value=f"value-{n}".encode(), partition=0,
                             on_delivery=lambda error, _: errors.append(error) if error else None)
        check(producer.flush(DEADLINE) == 0, "records left unsent")
        check(not errors, f"delivery errors: {errors[:3]}")

    @step("delete_records", has("delete_records"))
    def _():
        # A group whose committed offset (10) falls below the new log start: its consumer must be told
        # OFFSET_OUT_OF_RANGE and reset to the start (a null records field made librdkafka spin instead).
        behind = f"{group}-behind"
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": behind, "enable.auto.commit": False})
        committer.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
        committer.close()
        deleted = results(admin.delete_records([TopicPartition(topic, 0, 40)]))
        low = next(iter(deleted.values()))
        check(getattr(low, "low_watermark", 40) == 40, f"{low}")
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{group}-watermarks"})
        watermarks = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.close()
        check(watermarks == (40, 100), f"watermarks {watermarks}")
        resumed = Consumer({"bootstrap.servers": bootstrap, "group.id": behind, "auto.offset.reset": "earliest"})
        resumed.assign([TopicPartition(topic, 0)])
        deadline = time.monotonic() + DEADLINE
        first = None
        while first is None and time.monotonic() < deadline:
            message = resumed.poll(0.5)
            if message is not None and message.error() is None:
                first = message.offset()
        resumed.close()
        check(first == 40, f"a consumer committed below the log start read {first} first, not 40")

    @step("group_consume_commit")
    def _():
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([topic])
        seen = []
        deadline = time.monotonic() + DEADLINE
        while len(seen) < (60 if has("delete_records") else 100) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(message.offset())
        consumer.commit(asynchronous=False)
        consumer.close()
        check(min(seen) == (40 if has("delete_records") else 0), f"first offset read {min(seen) if seen else None}")
        check(len(seen) == (60 if has("delete_records") else 100), f"{len(seen)} records read")

    @step("list_and_describe_groups", has("list_consumer_groups"))
    def _():
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=DEADLINE)
        check(group in [g.group_id for g in listed.valid], f"{listed.valid}")
        described = results(admin.describe_consumer_groups([group], request_timeout=10))
        check(described[group].group_id == group, f"{described}")

    @step("group_offsets", has("list_consumer_group_offsets"))
    def _():
        from confluent_kafka import ConsumerGroupTopicPartitions
        listed = results(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]))
        offsets = next(iter(listed.values())).topic_partitions
        check(offsets[0].offset == 100, f"{offsets}")
        results(admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 70)])]))
        listed = results(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]))
        check(next(iter(listed.values())).topic_partitions[0].offset == 70, "the altered offset is not listed")

    @step("delete_group", has("delete_consumer_groups"))
    def _():
        results(admin.delete_consumer_groups([group], request_timeout=10))
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=DEADLINE)
        check(group not in [g.group_id for g in listed.valid], "the deleted group is still listed")

    @step("elect_leaders", has("elect_leaders"))
    def _():
        from confluent_kafka import ElectionType
        outcome = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(timeout=DEADLINE)
        for partition, error in outcome.items():
            # The preferred replica leads already: Kafka answers ELECTION_NOT_NEEDED.
            check(error is None or error.name() == "ELECTION_NOT_NEEDED", f"{partition}: {error}")

    @step("delete_topic")
    def _():
        results(admin.delete_topics([topic]))
        until("the topic is gone", lambda: topic not in admin.list_topics(timeout=10).topics)
        # Re-created under the same name, it has none of the old records.
        results(admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=brokers)]))
        until("the re-created topic has a leader", lambda: admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader >= 0)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{group}-again"})
        until("the re-created topic is empty", lambda: consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0))
        consumer.close()

    print(json.dumps({"client": "confluent-kafka", "version": confluent_kafka.version()[0], "steps": STEPS}))


main()
