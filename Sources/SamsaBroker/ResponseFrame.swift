import NIOCore
import SamsaProtocol
import SamsaStorage

/// A response ready to write: one buffer, or (zero-copy fetch) encoded parts around file ranges.
enum ResponseFrame: Sendable {
    case buffer(ByteBuffer)
    case spliced(SplicedResponse)

    /// Bytes on the wire, size prefix included (bytes-out metric).
    var totalBytes: Int {
        switch self {
        case .buffer(let buffer): buffer.readableBytes
        case .spliced(let spliced): spliced.frame.totalBytes
        }
    }
}

/// A fetch response whose record bytes go out from the segment files. It owns the slices' duplicated
/// descriptors: `close()` once the write of every part completed or failed (dropping it unclosed
/// closes them too, when the last copy goes).
struct SplicedResponse: Sendable {
    let frame: SplicedFrame<SegmentSlice>

    init(_ frame: SplicedFrame<SegmentSlice>) {
        self.frame = frame
    }

    /// The parts as NIO writes them: buffers, and file regions that the event loop sends with
    /// sendfile(2). That sendfile runs on the event loop is how NIO (and Kafka's network threads)
    /// do it: the pages are normally in the page cache, having just been written or read ahead.
    var parts: [IOData] {
        frame.parts.map { part in
            switch part {
            case .bytes(let bytes): .byteBuffer(bytes)
            case .spliced(let slice, _): .fileRegion(slice.fileRegion)
            }
        }
    }

    func close() {
        for part in frame.parts {
            if case .spliced(let slice, _) = part { slice.close() }
        }
    }
}
