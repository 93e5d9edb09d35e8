import SamsaProtocol
import Testing
@testable import SamsaBroker

/// DescribeCluster (KIP-700), the first call of Kafka's AdminClient `describeCluster`, at every version.
@Suite("DescribeCluster at every version")
struct DescribeClusterTests {
    @Test("Brokers and the controller at every version; the controllers endpoint type is refused")
    func everyVersion() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for version in try #require(SupportedApis.versions[.describeCluster]) {
                let response = try await connection.request(
                    DescribeClusterRequest(), version: version, expecting: DescribeClusterResponse.self, correlationId: Int32(version) + 1)
                #expect(response.errorCode == 0, "v\(version)")
                #expect(response.clusterId == "samsa")
                #expect(response.brokers.map(\.brokerId) == [broker.broker.configuration.brokerId], "v\(version)")
                #expect(response.brokers.first?.port == Int32(broker.port))
                #expect(response.controllerId == broker.broker.configuration.brokerId, "v\(version)")
                if version >= 1 {
                    var controllers = DescribeClusterRequest()
                    controllers.endpointType = 2
                    let refused = try await connection.request(
                        controllers, version: version, expecting: DescribeClusterResponse.self, correlationId: Int32(version) + 100)
                    #expect(refused.errorCode == ErrorCode.unsupportedEndpointType.rawValue, "v\(version)")
                    #expect(refused.brokers.isEmpty)
                }
            }
            try await connection.close()
        }
    }
}
