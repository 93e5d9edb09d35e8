import Foundation
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// AlterConfigs, IncrementalAlterConfigs and DescribeConfigs on a single broker: every version, the
/// effect on the logs and the produce path, Kafka's error code for each kind of bad input (with nothing
/// changed), broker-level dynamic configs and their precedence, and persistence across a restart.
@Suite("Broker config changes")
struct AlterConfigsTests {
    typealias Op = ConfigOperation.Kind

    static func incremental(
        _ resources: [(type: Int8, name: String, configs: [(String, Op, String?)])], validateOnly: Bool = false, version: Int16 = 1,
        on connection: TestConnection
    ) async throws -> [IncrementalAlterConfigsResponse.AlterConfigsResourceResponse] {
        var request = IncrementalAlterConfigsRequest()
        request.validateOnly = validateOnly
        request.resources = resources.map { type, name, configs in
            var resource = IncrementalAlterConfigsRequest.AlterConfigsResource()
            resource.resourceType = type
            resource.resourceName = name
            resource.configs = configs.map { name, op, value in
                var config = IncrementalAlterConfigsRequest.AlterableConfig()
                config.name = name
                config.configOperation = op.rawValue
                config.value = value
                return config
            }
            return resource
        }
        return try await connection.request(request, version: version, expecting: IncrementalAlterConfigsResponse.self).responses
    }

    static func legacy(
        _ type: Int8, _ name: String, _ configs: [(String, String?)], validateOnly: Bool = false, version: Int16 = 2, on connection: TestConnection
    ) async throws -> AlterConfigsResponse.AlterConfigsResourceResponse {
        var resource = AlterConfigsRequest.AlterConfigsResource()
        resource.resourceType = type
        resource.resourceName = name
        resource.configs = configs.map { name, value in
            var config = AlterConfigsRequest.AlterableConfig()
            config.name = name
            config.value = value
            return config
        }
        var request = AlterConfigsRequest()
        request.resources = [resource]
        request.validateOnly = validateOnly
        return try #require(try await connection.request(request, version: version, expecting: AlterConfigsResponse.self).responses.first)
    }

    static func describe(
        _ type: Int8, _ name: String, version: Int16 = 4, synonyms: Bool = true, on connection: TestConnection
    ) async throws -> DescribeConfigsResponse.DescribeConfigsResult {
        var resource = DescribeConfigsRequest.DescribeConfigsResource()
        resource.resourceType = type
        resource.resourceName = name
        resource.configurationKeys = nil
        var request = DescribeConfigsRequest()
        request.resources = [resource]
        request.includeSynonyms = synonyms
        request.includeDocumentation = true
        return try #require(try await connection.request(request, version: version, expecting: DescribeConfigsResponse.self).results.first)
    }

    static func values(_ result: DescribeConfigsResponse.DescribeConfigsResult) -> [String: String] {
        Dictionary(uniqueKeysWithValues: result.configs.map { ($0.name, $0.value ?? "null") })
    }

    static func withTopic(_ body: (TestBroker, TestConnection) async throws -> Void) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection).errorCode == 0)
            try await body(broker, connection)
            try await connection.close()
        }
    }

    @Test("IncrementalAlterConfigs at every version sets and deletes a topic's config; DescribeConfigs at every version shows value and source")
    func incrementalEveryVersion() async throws {
        try await Self.withTopic { broker, connection in
            for version in try #require(SupportedApis.versions[.incrementalAlterConfigs]) {
                let value = "\(1_000 + Int(version))"
                let set = try await Self.incremental([(2, "t", [("retention.ms", .set, value)])], version: version, on: connection)
                #expect(set.map(\.errorCode) == [0], "v\(version): \(set)")
                for describeVersion in try #require(SupportedApis.versions[.describeConfigs]) {
                    let result = try await Self.describe(2, "t", version: describeVersion, on: connection)
                    let entry = try #require(result.configs.first { $0.name == "retention.ms" })
                    #expect(entry.value == value, "describe v\(describeVersion)")
                    #expect(!entry.readOnly)
                    if describeVersion == 0 {
                        #expect(!entry.isDefault)
                    } else {
                        #expect(entry.configSource == ConfigSource.topic.rawValue)
                        #expect(entry.synonyms.first?.name == "retention.ms" && entry.synonyms.first?.value == value)
                        #expect(entry.synonyms.last?.source == ConfigSource.kafkaDefault.rawValue)
                    }
                    if describeVersion >= 3 {
                        #expect(entry.configType == ConfigKey.ConfigType.long.rawValue)
                        #expect(entry.documentation?.isEmpty == false)
                    }
                }
                for partition in Int32(0)..<2 {
                    #expect(broker.broker.dispatcher.topics.log("t", partition)?.configuration.retentionMilliseconds == Int64(value))
                }
                let deleted = try await Self.incremental([(2, "t", [("retention.ms", .delete, nil)])], version: version, on: connection)
                #expect(deleted.map(\.errorCode) == [0])
                let after = try await Self.describe(2, "t", on: connection).configs.first { $0.name == "retention.ms" }
                #expect(after?.configSource == ConfigSource.staticBroker.rawValue, "the broker's keep-forever (-1) differs from Kafka's 7 days")
                #expect(broker.broker.dispatcher.topics.log("t", 0)?.configuration.retentionMilliseconds == nil)
            }
        }
    }

    @Test("AlterConfigs at every version replaces the whole set: a config left out goes back to the broker's")
    func legacyReplacesTheSet() async throws {
        try await Self.withTopic { _, connection in
            for version in try #require(SupportedApis.versions[.alterConfigs]) {
                let first = try await Self.legacy(2, "t", [("retention.ms", "5000"), ("segment.bytes", "4096")], version: version, on: connection)
                #expect(first.errorCode == 0, "v\(version): \(first)")
                let second = try await Self.legacy(2, "t", [("segment.bytes", "8192")], version: version, on: connection)
                #expect(second.errorCode == 0)
                let configs = try await Self.describe(2, "t", on: connection).configs
                #expect(configs.first { $0.name == "segment.bytes" }?.value == "8192")
                #expect(configs.first { $0.name == "retention.ms" }?.configSource != ConfigSource.topic.rawValue)
            }
        }
    }

    @Test("A change reaches the logs and the produce path at once: a smaller segment rolls, a lower max.message.bytes refuses")
    func effectIsLive() async throws {
        try await Self.withTopic { broker, connection in
            let log = try #require(broker.broker.dispatcher.topics.log("t", 0))
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 40)], to: "t", on: connection).errorCode == 0)
            #expect(log.segmentCount == 1)
            let changed = try await Self.incremental(
                [(2, "t", [("segment.bytes", .set, "100"), ("max.message.bytes", .set, "400")])], on: connection)
            #expect(changed.map(\.errorCode) == [0])
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "t", on: connection).errorCode == 0)
            #expect(log.segmentCount == 2)
            let big = try await ProduceFetchTests.produce([try makeBatch(count: 40)], to: "t", on: connection)
            #expect(big.errorCode == ErrorCode.messageSizeTooLarge.rawValue)
        }
    }

    @Test("Bad input gets Kafka's error code and changes nothing", arguments: [false, true])
    func badInput(validateOnly: Bool) async throws {
        try await Self.withTopic { broker, connection in
            #expect(try await Self.incremental([(2, "t", [("retention.ms", .set, "7777")])], on: connection).map(\.errorCode) == [0])
            let before = Self.values(try await Self.describe(2, "t", on: connection))
            let cases: [(String, [(type: Int8, name: String, configs: [(String, Op, String?)])], ErrorCode)] = [
                ("unknown name", [(2, "t", [("retention.ms", .set, "1"), ("no.such.config", .set, "1")])], .invalidConfig),
                ("invalid value", [(2, "t", [("segment.bytes", .set, "1"), ("retention.ms", .set, "1")])], .invalidConfig),
                ("not a number", [(2, "t", [("retention.ms", .set, "soon")])], .invalidConfig),
                ("unknown cleanup policy", [(2, "t", [("cleanup.policy", .set, "shrink")])], .invalidConfig),
                ("conflicting compaction lags", [(2, "t", [("min.compaction.lag.ms", .set, "9"), ("max.compaction.lag.ms", .set, "8")])], .invalidConfig),
                ("append to a number", [(2, "t", [("retention.ms", .append, "1")])], .invalidRequest),
                ("null set", [(2, "t", [("retention.ms", .set, nil)])], .invalidRequest),
                ("duplicated key", [(2, "t", [("retention.ms", .set, "1"), ("retention.ms", .delete, nil)])], .invalidRequest),
                ("unknown topic", [(2, "nope", [("retention.ms", .set, "1")])], .unknownTopicOrPartition),
                ("another broker", [(4, "7", [("log.retention.ms", .set, "1")])], .invalidRequest),
                ("broker id not a number", [(4, "x", [("log.retention.ms", .set, "1")])], .invalidRequest),
                ("read-only broker config", [(4, "0", [("num.partitions", .set, "3")])], .invalidConfig),
                ("broker logger", [(8, "0", [("root", .set, "DEBUG")])], .invalidRequest),
                ("unknown resource type", [(99, "t", [("retention.ms", .set, "1")])], .invalidRequest),
                ("duplicated resource", [(2, "t", [("retention.ms", .set, "1")]), (2, "t", [("segment.ms", .set, "1")])], .invalidRequest),
            ]
            for (what, resources, code) in cases {
                let answers = try await Self.incremental(resources, validateOnly: validateOnly, on: connection)
                #expect(answers.count == resources.count, "\(what)")
                #expect(answers.allSatisfy { $0.errorCode == code.rawValue && $0.errorMessage?.isEmpty == false }, "\(what): \(answers)")
            }
            var unknownOperation = IncrementalAlterConfigsRequest()
            var resource = IncrementalAlterConfigsRequest.AlterConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "t"
            var config = IncrementalAlterConfigsRequest.AlterableConfig()
            config.name = "retention.ms"
            config.configOperation = 9
            config.value = "1"
            resource.configs = [config]
            unknownOperation.resources = [resource]
            let answer = try await connection.request(unknownOperation, version: 1, expecting: IncrementalAlterConfigsResponse.self)
            #expect(answer.responses.map(\.errorCode) == [ErrorCode.invalidRequest.rawValue])
            #expect(Self.values(try await Self.describe(2, "t", on: connection)) == before)
            #expect(broker.broker.dispatcher.topics.log("t", 0)?.configuration.retentionMilliseconds == 7777)
            #expect(broker.broker.dispatcher.topics.brokerConfigs.dynamicValues(.clusterDefault).isEmpty)
        }
    }

    @Test("validate_only checks a valid change and makes none")
    func validateOnly() async throws {
        try await Self.withTopic { broker, connection in
            let answers = try await Self.incremental(
                [(2, "t", [("retention.ms", .set, "1234")]), (4, "", [("log.retention.ms", .set, "99")])], validateOnly: true, on: connection)
            #expect(answers.map(\.errorCode) == [0, 0])
            #expect(Self.values(try await Self.describe(2, "t", on: connection))["retention.ms"] == "-1")
            #expect(broker.broker.dispatcher.topics.brokerConfigs.dynamicValues(.clusterDefault).isEmpty)
        }
    }

    @Test("Broker dynamic configs: the cluster default, then this broker's own, each below a topic's own; kept across a restart")
    func brokerLayers() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        #expect(try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection).errorCode == 0)
        #expect(try await ProduceFetchTests.createTopic("own", partitions: 1, on: connection).errorCode == 0)
        #expect(try await Self.incremental([(2, "own", [("retention.ms", .set, "111")])], on: connection).map(\.errorCode) == [0])
        #expect(try await Self.incremental([(4, "", [("log.retention.ms", .set, "222")])], on: connection).map(\.errorCode) == [0])

        func source(_ topic: String, on connection: TestConnection) async throws -> (String?, Int8?) {
            let entry = try await Self.describe(2, topic, on: connection).configs.first { $0.name == "retention.ms" }
            return (entry?.value, entry?.configSource)
        }
        #expect(try await source("t", on: connection) == ("222", ConfigSource.dynamicDefaultBroker.rawValue))
        #expect(try await source("own", on: connection) == ("111", ConfigSource.topic.rawValue))
        #expect(broker.broker.dispatcher.topics.log("t", 0)?.configuration.retentionMilliseconds == 222)
        #expect(broker.broker.dispatcher.topics.log("own", 0)?.configuration.retentionMilliseconds == 111)

        #expect(try await Self.incremental([(4, "0", [("log.retention.ms", .set, "333")])], on: connection).map(\.errorCode) == [0])
        #expect(try await source("t", on: connection) == ("333", ConfigSource.dynamicBroker.rawValue))
        let synonyms = try #require(try await Self.describe(2, "t", on: connection).configs.first { $0.name == "retention.ms" }?.synonyms)
        #expect(synonyms.map(\.source) == [2, 3, 4, 5])
        #expect(synonyms.map(\.name) == ["log.retention.ms", "log.retention.ms", "log.retention.ms", "log.retention.ms"])
        let brokerView = try await Self.describe(4, "0", on: connection)
        #expect(brokerView.configs.first { $0.name == "log.retention.ms" }?.value == "333")
        #expect(brokerView.configs.first { $0.name == "num.partitions" }?.readOnly == true)
        #expect(Self.values(try await Self.describe(4, "", on: connection)) == ["log.retention.ms": "222"])
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        #expect(try await source("t", on: connection) == ("333", ConfigSource.dynamicBroker.rawValue))
        #expect(restarted.broker.dispatcher.topics.log("t", 0)?.configuration.retentionMilliseconds == 333)
        #expect(restarted.broker.dispatcher.topics.log("own", 0)?.configuration.retentionMilliseconds == 111)
        try await connection.close()
        try await restarted.stop()
    }

    @Test("A resource named again in one DescribeConfigs is answered INVALID_REQUEST without configs: the answer grows with distinct resources only")
    func describeRepeated() async throws {
        try await Self.withTopic { _, connection in
            var resource = DescribeConfigsRequest.DescribeConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "t"
            resource.configurationKeys = nil
            var request = DescribeConfigsRequest()
            request.resources = Array(repeating: resource, count: 10_000)
            request.includeSynonyms = true
            request.includeDocumentation = true
            let response = try await connection.request(request, version: 4, expecting: DescribeConfigsResponse.self)
            #expect(response.results.count == 10_000)
            #expect(response.results.first?.errorCode == 0 && response.results.first?.configs.count == ConfigKeys.all.count)
            #expect(response.results.dropFirst().allSatisfy { $0.errorCode == ErrorCode.invalidRequest.rawValue && $0.configs.isEmpty })
        }
    }

    @Test("A thousand resources and a thousand configs in one request are each answered")
    func atTheLimits() async throws {
        try await Self.withTopic { _, connection in
            let many = (0..<1_000).map { (type: Int8(2), name: "missing-\($0)", configs: [("retention.ms", Op.set, Optional("1"))]) }
            let answers = try await Self.incremental(many, on: connection)
            #expect(answers.count == 1_000 && answers.allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
            let configs = (0..<1_000).map { ("unknown-\($0)", Op.set, Optional(String(repeating: "v", count: 32))) }
            let refused = try await Self.incremental([(2, "t", configs)], on: connection)
            #expect(refused.map(\.errorCode) == [ErrorCode.invalidConfig.rawValue])
            #expect((refused.first?.errorMessage?.utf8.count ?? 0) < 1_000, "messages stay short whatever was sent")
            let repeated = Array(repeating: "delete", count: 4_000).joined(separator: ",")
            #expect(try await Self.incremental([(2, "t", [("cleanup.policy", .set, repeated)])], on: connection).map(\.errorCode) == [0])
            #expect(Self.values(try await Self.describe(2, "t", on: connection))["cleanup.policy"] == "delete", "a list is stored once per entry")
            let padded = "+" + String(repeating: "0", count: 30_000) + "86400000"
            #expect(try await Self.incremental([(2, "t", [("retention.ms", .set, padded)])], on: connection).map(\.errorCode) == [0])
            #expect(Self.values(try await Self.describe(2, "t", on: connection))["retention.ms"] == "86400000", "a number is stored as its digits")
            let long = String(repeating: "x", count: 32 << 10)
            let longName = try await Self.incremental([(2, long, [(long, .set, long)])], on: connection)
            #expect(longName.first?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
            #expect((longName.first?.errorMessage?.utf8.count ?? 0) < 1_000)
        }
    }
}
