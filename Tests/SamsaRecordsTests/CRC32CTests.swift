import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

@Suite("CRC-32C", .offCooperativePool)
struct CRC32CTests {
    /// Known answers: the check value of the Castagnoli CRC and RFC 3720 (iSCSI) appendix B.4 vectors.
    static let knownAnswers: [([UInt8], UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0...31), 0x46DD_794E),
        (Array((0...31).reversed()), 0x113F_DB5C),
        ([], 0),
    ]

    @Test("known answers", arguments: CRC32C.Implementation.allCases)
    func knownAnswers(implementation: CRC32C.Implementation) {
        for (input, expected) in Self.knownAnswers {
            #expect(CRC32C.checksum(input, using: implementation) == expected, "\(input.count) bytes")
        }
    }

    @Test("the hardware instruction is used on this machine")
    func hardwareIsAvailable() {
        #if arch(x86_64) || arch(arm64)
            #expect(CRC32C.isHardwareAvailable)
        #endif
    }

    /// Every length around the 3-stream block sizes (256 and 8192 bytes × 3) and every alignment.
    @Test("hardware and software agree at every block boundary and alignment")
    func implementationsAgree() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<(3 * 8192 * 2 + 64)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let lengths = Set([0, 1, 7, 8, 9, 255, 256, 767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 777, 2 * 3 * 8192])
        data.withUnsafeBytes { raw in
            for length in lengths {
                for alignment in 0..<8 {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[alignment..<(alignment + length)])
                    let software = CRC32C.checksum(slice, using: .software)
                    #expect(CRC32C.checksum(slice, using: .hardware) == software, "length \(length) alignment \(alignment)")
                    #expect(CRC32C.checksum(slice, using: .best) == software)
                }
            }
        }
    }

    @Test("a checksum can continue over split input", arguments: CRC32C.Implementation.allCases)
    func continuation(implementation: CRC32C.Implementation) {
        let data = Array("The quick brown fox jumps over the lazy dog, again and again and again.".utf8)
        let whole = CRC32C.checksum(data, using: implementation)
        data.withUnsafeBytes { raw in
            for split in 0...data.count {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<split]), using: implementation)
                let both = CRC32C.checksum(
                    UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: first, using: implementation)
                #expect(both == whole)
            }
        }
    }
}
