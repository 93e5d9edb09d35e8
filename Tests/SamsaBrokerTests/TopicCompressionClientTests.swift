import Foundation
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// Real clients and a topic that recompresses: confluent-kafka's idempotent producer writes without
/// compression into a `compression.type=zstd` topic (the broker stores zstd), and confluent-kafka,
/// kafka-python and aiokafka read every record back intact (key, value, headers, timestamp, offset).
///
/// The producer and confluent-kafka consumer run from the matrix venvs (`SAMSA_CLIENT_MATRIX`: the
/// oldest and newest confluent-kafka, whose wheels bundle librdkafka with zstd). kafka-python and
/// aiokafka decode zstd only with the `zstandard` module, which the matrix venvs lack, so they run
/// from the test venv (`SAMSA_PYTHON`: kafka-python 3.0.12 and aiokafka 0.14 with zstandard and lz4).
@Suite("Topic compression.type with real clients")
struct TopicCompressionClientTests {
    struct Produced: Decodable {
        var errors: [String]
        var offsets: [Int64]
    }

    struct Consumed: Decodable {
        struct Record: Decodable, Equatable {
            var offset: Int64
            var key: String?
            var value: String
            var headers: [[String]]
            var timestamp: Int64
        }
        var client: String
        var errors: [String]
        var records: [Record]
    }

    static let count = 600

    /// What record `index` must read back as (the script writes exactly this).
    static func expected(_ index: Int, base: Int64) -> Consumed.Record {
        Consumed.Record(
            offset: Int64(index), key: index % 2 == 0 ? "key-\(index % 7)" : nil, value: "value-\(index)-" + String(repeating: "x", count: index % 50),
            headers: index % 3 == 0 ? [["h", "hv-\(index)"], ["n", ""]] : [], timestamp: base + Int64(index))
    }

    static func run(_ python: String, _ arguments: [String]) async throws -> Data {
        try await ClientProcess.run(["timeout", "-k", "5", "180", python, "-c", script] + arguments)
    }

    @Test("confluent-kafka's idempotent producer, uncompressed, into a zstd topic: stored zstd, no duplicates or sequence errors; three clients read every record", arguments: ["confluent-kafka-2.0.2", "confluent-kafka-2.16.2"])
    func idempotentIntoZstd(_ producerClient: String) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await TopicCompressionTests.create("zstd-stored", compression: "zstd", on: connection).errorCode == 0)
            try await connection.close()
            let bootstrap = "127.0.0.1:\(broker.port)"
            let base = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
            let producer = try RecordsAdminClientTests.python(producerClient)
            let produced = try JSONDecoder().decode(Produced.self, from: try await Self.run(producer, [bootstrap, "zstd-stored", "produce", "\(Self.count)", "\(base)"]))
            #expect(produced.errors == [], "\(produced.errors)")
            #expect(produced.offsets == (0..<Int64(Self.count)).map { $0 }, "each record once, in order")

            let stored = try TopicCompressionTests.storedBatches(broker, "zstd-stored")
            #expect(stored.allSatisfy { $0.compression == .zstd }, "\(stored.map(\.compression))")
            #expect(stored.reduce(0) { $0 + Int($1.recordCount) } == Self.count)
            #expect(stored.count >= Self.count / 40, "many batches, so sequences are checked across them: \(stored.count)")
            // One producer, its sequences contiguous from 0 as the client numbered them.
            #expect(Set(stored.map(\.producerId)).count == 1 && stored.first.map { $0.producerId >= 0 } == true)
            var next: Int32 = 0
            for batch in stored {
                #expect(batch.baseSequence == next)
                next = batch.baseSequence + batch.recordCount
            }

            let expected = (0..<Self.count).map { Self.expected($0, base: base) }
            let testVenv = PythonClient.python
            for (python, mode) in [(producer, "confluent"), (testVenv, "kafka-python"), (testVenv, "aiokafka")] {
                let consumed = try JSONDecoder().decode(Consumed.self, from: try await Self.run(python, [bootstrap, "zstd-stored", mode, "\(Self.count)", "\(base)"]))
                #expect(consumed.errors == [], "\(consumed.client): \(consumed.errors)")
                #expect(consumed.records.count == expected.count, "\(consumed.client)")
                for (got, want) in zip(consumed.records, expected) where got != want {
                    Issue.record("\(consumed.client): got \(got), expected \(want)")
                    break
                }
            }
        }
    }

    /// produce: confluent-kafka, idempotent, acks=all, compression none, many small batches in flight.
    /// confluent / kafka-python / aiokafka: read partition 0 from the start. Prints one JSON object.
    static let script = #"""
import asyncio, json, sys, time

bootstrap, topic, mode, count, base = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def record(offset, key, value, headers, timestamp):
    return {"offset": offset, "key": key.decode() if key is not None else None, "value": value.decode(),
            "headers": [[k, (v or b"").decode()] for k, v in (headers or [])], "timestamp": timestamp}

def produce():
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "compression.type": "none", "linger.ms": 2, "batch.num.messages": 40,
                         "max.in.flight.requests.per.connection": 5})
    errors, offsets = [], []
    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets.append(msg.offset())
    for i in range(count):
        headers = [("h", ("hv-%d" % i).encode()), ("n", None)] if i % 3 == 0 else None
        producer.produce(topic, partition=0, key=("key-%d" % (i % 7)).encode() if i % 2 == 0 else None,
                         value=("value-%d-" % i + "x" * (i % 50)).encode(), headers=headers, timestamp=base + i,
                         on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(60)
    if left:
        errors.append("%d records not delivered" % left)
    return {"errors": errors, "offsets": sorted(offsets)}

def consume_confluent():
    import confluent_kafka
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compression-reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    records, errors, deadline = [], [], time.time() + 60
    while len(records) < count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            errors.append(str(message.error()))
            continue
        records.append(record(message.offset(), message.key(), message.value(), message.headers(), message.timestamp()[1]))
    consumer.close()
    return {"client": "confluent-kafka " + confluent_kafka.version()[0], "errors": errors, "records": records}

def consume_kafka_python():
    import kafka
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    records, errors, deadline = [], [], time.time() + 60
    while len(records) < count and time.time() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(record(m.offset, m.key, m.value, m.headers, m.timestamp) for m in batch)
    consumer.close()
    return {"client": "kafka-python " + kafka.__version__, "errors": errors, "records": records}

async def consume_aiokafka():
    import aiokafka
    from aiokafka import AIOKafkaConsumer, TopicPartition
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records, errors = [], []
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        deadline = time.time() + 60
        while len(records) < count and time.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(record(m.offset, m.key, m.value, m.headers, m.timestamp) for m in batch)
    finally:
        await consumer.stop()
    return {"client": "aiokafka " + aiokafka.__version__, "errors": errors, "records": records}

try:
    if mode == "produce":
        result = produce()
    elif mode == "confluent":
        result = consume_confluent()
    elif mode == "kafka-python":
        result = consume_kafka_python()
    else:
        result = asyncio.run(consume_aiokafka())
except Exception as error:
    result = {"client": mode, "errors": ["%s: %s" % (type(error).__name__, error)], "records": [], "offsets": []}
print(json.dumps(result))
"""#
}
