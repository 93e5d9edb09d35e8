"""aiokafka against a Kafka-protocol broker, for SamsaBrokerTests.

    aiokafka_client.py BOOTSTRAP TOPIC COUNT COMPRESSION

Creates TOPIC (admin), produces COUNT records (acks=1, aiokafka's default), then a group consumer reads
them from the earliest offset and commits. Prints the produced offsets, the values and the commit as JSON.
"""
import asyncio
import json
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def main():
    bootstrap, topic, count, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=None if compression == "none" else compression)
    await producer.start()
    offsets = []
    for index in range(count):
        metadata = await producer.send_and_wait(topic, value=f"value-{index}".encode(), partition=0)
        offsets.append(metadata.offset)
    await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-readers", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    values = []
    try:
        while len(values) < count:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            for records in batches.values():
                values += [record.value.decode() for record in records]
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    print(json.dumps({"offsets": offsets, "values": values, "committed": committed}))


if __name__ == "__main__":
    asyncio.run(main())
