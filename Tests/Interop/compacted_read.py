"""Reads a compacted topic's partition 0 through a real client, for SamsaBrokerTests (CompactedTopicClientTests).

    compacted_read.py BOOTSTRAP TOPIC START_OFFSET END_OFFSET

Assigns partition 0 at START_OFFSET (which may fall inside a range the log cleaner removed: the broker
then serves the next batch) and reads until a record at or past END_OFFSET - 1 or 20 s pass; then tries
to produce one record without a key (refused on a compacted topic). Prints one JSON object: the client
and version, the records read as [offset, key, value or null] and the error name the keyless produce got.
Runs whichever of confluent-kafka, aiokafka and kafka-python the interpreter has (in that order).
"""
import asyncio
import json
import sys
import time


def confluent(bootstrap, topic, start, end):
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, start)])
    records = []
    deadline = time.time() + 20
    while time.time() < deadline and (not records or int(records[-1][0]) < end - 1):
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(str(message.error()))
        value = message.value()
        records.append([str(message.offset()), message.key().decode(), None if value is None else value.decode()])
    consumer.close()
    refused = []
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0, "enable.idempotence": False})
    producer.produce(topic, value=b"no key", partition=0, on_delivery=lambda error, _: refused.append(error.name() if error else "none"))
    producer.flush(30)
    version = getattr(confluent_kafka, "__version__", None) or confluent_kafka.version()[0]
    return {"client": "confluent-kafka", "version": version, "records": records, "keyless": refused[0] if refused else "no answer"}


def kafka_python(bootstrap, topic, start, end):
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, start)
    records = []
    deadline = time.time() + 20
    while time.time() < deadline and (not records or int(records[-1][0]) < end - 1):
        for batch in consumer.poll(timeout_ms=500).values():
            for record in batch:
                records.append([str(record.offset), record.key.decode(), None if record.value is None else record.value.decode()])
    consumer.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, retries=0)
    try:
        producer.send(topic, value=b"no key", partition=0).get(timeout=30)
        refused = "none"
    except Exception as error:  # kafka.errors.InvalidRecordError, by name across versions
        refused = type(error).__name__
    producer.close()
    return {"client": "kafka-python", "version": kafka.__version__, "records": records, "keyless": refused}


async def aiokafka_read(bootstrap, topic, start, end):
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, start)
    records = []
    deadline = time.time() + 20
    try:
        while time.time() < deadline and (not records or int(records[-1][0]) < end - 1):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    records.append([str(record.offset), record.key.decode(), None if record.value is None else record.value.decode()])
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=b"no key", partition=0)
        refused = "none"
    except Exception as error:
        refused = type(error).__name__
    finally:
        await producer.stop()
    return {"client": "aiokafka", "version": aiokafka.__version__, "records": records, "keyless": refused}


def main():
    bootstrap, topic, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    try:
        import confluent_kafka  # noqa: F401
        outcome = confluent(bootstrap, topic, start, end)
    except ImportError:
        try:
            import aiokafka  # noqa: F401
            outcome = asyncio.run(aiokafka_read(bootstrap, topic, start, end))
        except ImportError:
            outcome = kafka_python(bootstrap, topic, start, end)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
