import CCRC32C
public import NIOCore

/// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
///
/// The work is done in the `CCRC32C` C target: the CPU's CRC instruction (SSE4.2 on x86-64, the CRC
/// extension on arm64) with three interleaved streams, or a slicing-by-8 table where the CPU has none.
/// Written in C because the interleaving and the instruction intrinsics are not expressible in Swift.
public enum CRC32C {
    /// Which implementation computes the checksum.
    public enum Implementation: Sendable, CaseIterable, CustomStringConvertible {
        /// The fastest this CPU supports, chosen once at load time.
        case best
        /// The CPU's CRC-32C instruction; falls back to `software` where the CPU has none.
        case hardware
        /// The portable table implementation.
        case software

        public var description: String {
            switch self {
            case .best: "best"
            case .hardware: "hardware"
            case .software: "software"
            }
        }
    }

    /// True when this CPU has a CRC-32C instruction.
    public static var isHardwareAvailable: Bool { samsa_crc32c_hardware_available() }

    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(
        _ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0, using implementation: Implementation = .best
    ) -> UInt32 {
        compute(crc, bytes.baseAddress, bytes.count, implementation)
    }

    /// The checksum of an array of bytes.
    public static func checksum(_ bytes: [UInt8], using implementation: Implementation = .best) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, using: implementation) }
    }

    /// The checksum of a buffer's readable bytes.
    public static func checksum(_ buffer: ByteBuffer, using implementation: Implementation = .best) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0, using: implementation) }
    }

    @usableFromInline
    static func compute(
        _ crc: UInt32, _ base: UnsafeRawPointer?, _ count: Int, _ implementation: Implementation
    ) -> UInt32 {
        guard let base, count > 0 else { return crc }
        switch implementation {
        case .best: return samsa_crc32c(crc, base, count)
        case .hardware:
            return isHardwareAvailable
                ? samsa_crc32c_hardware(crc, base, count) : samsa_crc32c_software(crc, base, count)
        case .software: return samsa_crc32c_software(crc, base, count)
        }
    }
}
