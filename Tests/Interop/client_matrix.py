"""One Kafka client version through the calls real tools make, for ClientMatrixTests.

    client_matrix.py BOOTSTRAP TOPIC

Runs with whichever client its interpreter's venv holds (confluent-kafka, aiokafka or kafka-python, in
that order of preference): list all topics (the first call of most tools), describe the cluster and the
topic where the client can, create TOPIC (2 partitions), produce 100 records with acks=all (idempotent
where the client supports it), consume them in a group and commit, describe the group, describe the
topic's configs, and list all topics again. Prints one JSON object: the client and version, and per step
"ok" or the error. Every step has its own deadline; the script never waits unbounded.
"""
import asyncio
import json
import sys
import time
import traceback

COUNT = 100
STEPS = {}


def step(name):
    def wrap(function):
        def run(*args):
            try:
                result = function(*args)
                STEPS[name] = "ok" if result is None else result
            except Exception as error:  # reported, not raised: every step runs
                STEPS[name] = f"error: {type(error).__name__}: {error}"
                traceback.print_exc(file=sys.stderr)
        return run
    return wrap


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def confluent(bootstrap, topic):
    import confluent_kafka
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})

    @step("list_topics")
    def list_topics():
        check("existing" in admin.list_topics(timeout=10).topics, "the pre-made topic 'existing' is not listed")

    @step("describe_cluster")
    def describe_cluster():
        if not hasattr(admin, "describe_cluster"):
            return "n/a"
        described = admin.describe_cluster(request_timeout=10).result(timeout=15)
        check(len(described.nodes) == 1, f"nodes: {described.nodes}")

    @step("create_topic")
    def create_topic():
        for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
            future.result(timeout=15)

    @step("describe_topics")
    def describe_topics():
        if not hasattr(admin, "describe_topics"):
            return "n/a"
        from confluent_kafka import TopicCollection
        for future in admin.describe_topics(TopicCollection([topic]), request_timeout=10).values():
            check(len(future.result(timeout=15).partitions) == 2, "not 2 partitions")

    @step("idempotent_produce")
    def produce():
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
        failures = []
        for index in range(COUNT):
            producer.produce(topic, value=f"value-{index}".encode(), key=f"key-{index}".encode(),
                             on_delivery=lambda error, _: error and failures.append(str(error)))
            producer.poll(0)
        check(producer.flush(30) == 0, "records left undelivered")
        check(not failures, f"delivery errors: {failures[:3]}")

    @step("group_consume_commit")
    def consume():
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-group", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([topic])
        seen = set()
        deadline = time.time() + 30
        while len(seen) < COUNT and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            check(not message.error(), str(message.error()))
            seen.add(message.value().decode())
        check(seen == {f"value-{index}" for index in range(COUNT)}, f"consumed {len(seen)} of {COUNT}")
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        check(sum(partition.offset for partition in committed) == COUNT, f"committed {committed}")
        consumer.close()

    @step("describe_group")
    def describe_group():
        group = f"{topic}-group"
        for future in admin.describe_consumer_groups([group], request_timeout=10).values():
            described = future.result(timeout=15)
            check(described.group_id == group, f"described {described.group_id}")
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
        check(any(g.group_id == group for g in listed.valid), f"listed {listed.valid}")

    @step("describe_configs")
    def describe_configs():
        for future in admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values():
            check("retention.ms" in future.result(timeout=15), "no retention.ms")

    @step("list_topics_again")
    def list_again():
        check(topic in admin.list_topics(timeout=10).topics, f"{topic} is not listed")

    for run in (list_topics, describe_cluster, create_topic, describe_topics, produce, consume, describe_group,
                describe_configs, list_again):
        run()
    return "confluent-kafka", f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})"


def kafka_python(bootstrap, topic):
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    idempotent = "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG

    @step("list_topics")
    def list_topics():
        check("existing" in admin.list_topics(), "the pre-made topic 'existing' is not listed")

    @step("describe_cluster")
    def describe_cluster():
        check(len(admin.describe_cluster()["brokers"]) == 1, "not one broker")

    @step("create_topic")
    def create_topic():
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])

    @step("describe_topics")
    def describe_topics():
        described = admin.describe_topics([topic])
        check(len(described[0]["partitions"]) == 2, f"described {described}")

    @step("idempotent_produce")
    def produce():
        options = {"enable_idempotence": True} if idempotent else {}
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **options)
        futures = [producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode()) for i in range(COUNT)]
        producer.flush(30)
        for future in futures:
            future.get(timeout=10)
        producer.close()
        return "ok" if idempotent else "ok (acks=all; this version has no idempotent producer)"

    @step("group_consume_commit")
    def consume():
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group", auto_offset_reset="earliest",
                                 enable_auto_commit=False, consumer_timeout_ms=1000)
        seen = set()
        deadline = time.time() + 30
        while len(seen) < COUNT and time.time() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen.update(record.value.decode() for record in records)
        check(seen == {f"value-{index}" for index in range(COUNT)}, f"consumed {len(seen)} of {COUNT}")
        consumer.commit()
        committed = sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1))
        check(committed == COUNT, f"committed {committed}")
        consumer.close()

    @step("describe_group")
    def describe_group():
        group = f"{topic}-group"
        if hasattr(admin, "describe_consumer_groups"):  # 2.x
            described = admin.describe_consumer_groups([group])
            check(described[0].group == group and described[0].error_code == 0, f"described {described}")
            check(any(entry[0] == group for entry in admin.list_consumer_groups()), "group not listed")
        else:  # 3.x renamed them, and raises on an error code
            check(group in repr(admin.describe_groups([group])), "group not described")
            check(group in repr(admin.list_groups()), "group not listed")

    @step("describe_configs")
    def describe_configs():
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        try:  # 3.x returns only non-default values unless asked for all
            response = admin.describe_configs([resource], config_filter="all")
        except TypeError:
            response = admin.describe_configs([resource])
        text = repr(response)
        check("retention.ms" in text, f"no retention.ms in {text[:300]}")

    @step("list_topics_again")
    def list_again():
        check(topic in admin.list_topics(), f"{topic} is not listed")

    for run in (list_topics, describe_cluster, create_topic, describe_topics, produce, consume, describe_group,
                describe_configs, list_again):
        run()
    admin.close()
    return "kafka-python", kafka.__version__


def aiokafka_client(bootstrap, topic):
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.structs import TopicPartition

    async def guarded(name, coroutine):
        try:
            result = await asyncio.wait_for(coroutine, 45)
            STEPS[name] = "ok" if result is None else result
        except Exception as error:
            STEPS[name] = f"error: {type(error).__name__}: {error}"
            traceback.print_exc(file=sys.stderr)

    async def main():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        await admin.start()

        async def list_topics():
            check("existing" in await admin.list_topics(), "the pre-made topic 'existing' is not listed")

        async def describe_cluster():
            check(len((await admin.describe_cluster())["brokers"]) == 1, "not one broker")

        async def create_topic():
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])

        async def describe_topics():
            described = await admin.describe_topics([topic])
            check(len(described[0]["partitions"]) == 2, f"described {described}")

        async def produce():
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
            await producer.start()
            try:
                futures = [await producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode()) for i in range(COUNT)]
                await producer.flush()
                for future in futures:
                    await future
            finally:
                await producer.stop()

        async def consume():
            consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group",
                                        auto_offset_reset="earliest", enable_auto_commit=False)
            await consumer.start()
            try:
                seen = set()
                deadline = time.time() + 30
                while len(seen) < COUNT and time.time() < deadline:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        seen.update(record.value.decode() for record in records)
                check(seen == {f"value-{index}" for index in range(COUNT)}, f"consumed {len(seen)} of {COUNT}")
                await consumer.commit()
                committed = sum([await consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1)])
                check(committed == COUNT, f"committed {committed}")
            finally:
                await consumer.stop()

        async def describe_group():
            group = f"{topic}-group"
            described = await admin.describe_consumer_groups([group])
            check(group in repr(described), f"described {described}")
            check(any(entry[0] == group for entry in await admin.list_consumer_groups()), "group not listed")

        async def describe_configs():
            try:
                from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
            except ImportError:  # 0.8 takes kafka-python's
                from kafka.admin.config_resource import ConfigResource, ConfigResourceType
            text = repr(await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
            check("retention.ms" in text, f"no retention.ms in {text[:300]}")

        async def list_again():
            check(topic in await admin.list_topics(), f"{topic} is not listed")

        for name, function in (("list_topics", list_topics), ("describe_cluster", describe_cluster),
                               ("create_topic", create_topic), ("describe_topics", describe_topics),
                               ("idempotent_produce", produce), ("group_consume_commit", consume),
                               ("describe_group", describe_group), ("describe_configs", describe_configs),
                               ("list_topics_again", list_again)):
            await guarded(name, function())
        await admin.close()

    asyncio.run(main())
    return "aiokafka", aiokafka.__version__


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    try:
        import confluent_kafka  # noqa: F401
        client = confluent
    except ImportError:
        try:
            import aiokafka  # noqa: F401
            client = aiokafka_client
        except ImportError:
            client = kafka_python
    name, version = client(bootstrap, topic)
    print(json.dumps({"client": name, "version": version, "steps": STEPS}))


if __name__ == "__main__":
    main()
