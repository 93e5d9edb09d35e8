import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage

/// 3. Sequential read of a log from the page cache, against read(2) of its segment files.
func sequentialRead() throws {
    let size = quick ? 256 << 20 : 1 << 30
    print("\n## Sequential read of \(size >> 20) MiB from the page cache, vs read(2) with a 1 MiB buffer")
    let dir = scratchDirectory("read")
    defer { cleanUp(dir) }
    let batch = makeBatch(recordSize: 1024, batchBytes: 256 << 10)
    let (log, _) = try PartitionLog.open(directory: dir, configuration: LogConfiguration(segmentBytes: 256 << 20, flushPolicy: .never))
    for _ in 0..<(size / batch.sizeInBytes) { _ = try log.appendWithoutWaiting(batch) }
    var samsa: [Double] = [], plain: [Double] = []
    let segmentPaths = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }.sorted().map { dir + "/" + $0 }
    var bytesRead = 0
    for run in 0...runs {  // the first run warms the cache and is not counted
        var start = now()
        var next: Int64 = 0
        bytesRead = 0
        while let bytes = try log.read(from: next, maxBytes: 1 << 20) {
            bytesRead += bytes.readableBytes
            // The last batch's next offset: read on from there.
            var view = bytes
            var last = next
            while view.readableBytes >= RecordBatchLayout.headerLength {
                let base = view.getInteger(at: view.readerIndex, as: Int64.self)!
                let length = Int(view.getInteger(at: view.readerIndex + 8, as: Int32.self)!)
                let delta = view.getInteger(at: view.readerIndex + RecordBatchLayout.lastOffsetDeltaOffset, as: Int32.self)!
                last = base + Int64(delta) + 1
                view.moveReaderIndex(forwardBy: length + 12)
            }
            next = last
        }
        if run > 0 { samsa.append(seconds(now() - start)) }
        start = now()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for path in segmentPaths {
            let fd = open(path, O_RDONLY)
            buffer.withUnsafeMutableBytes { raw in
                while read(fd, raw.baseAddress, raw.count) > 0 {}
            }
            close(fd)
        }
        if run > 0 { plain.append(seconds(now() - start)) }
    }
    try log.close()
    let s = median(samsa), p = median(plain)
    report("PartitionLog.read, 1 MiB per call", formatRate(Double(bytesRead) / s), "read(2): \(formatRate(Double(bytesRead) / p)), ratio \(String(format: "%.2f", p / s))")
}

/// 4. Random offset lookups: read of the one batch holding a random offset, latency.
func randomLookups() throws {
    print("\n## Random offset lookups (the batch holding a random offset), page cache")
    let dir = scratchDirectory("lookup")
    defer { cleanUp(dir) }
    let batch = makeBatch(recordSize: 100, batchBytes: 1024)
    let (log, _) = try PartitionLog.open(directory: dir, configuration: LogConfiguration(segmentBytes: 64 << 20, flushPolicy: .never))
    for _ in 0..<((quick ? 64 : 256) << 20) / batch.sizeInBytes { _ = try log.appendWithoutWaiting(batch) }
    var latencies = Latencies()
    var generator = SystemRandomNumberGenerator()
    let end = log.logEndOffset
    for _ in 0..<(quick ? 100_000 : 300_000) {
        let offset = Int64.random(in: 0..<end, using: &generator)
        let start = now()
        let bytes = try log.read(from: offset, maxBytes: 1)
        latencies.record(now() - start)
        precondition(bytes != nil)
    }
    // Baseline: the syscall alone, a 4 KiB pread at a random position of the same files.
    let paths = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }.map { dir + "/" + $0 }
    let descriptors = paths.map { open($0, O_RDONLY) }
    let sizes = descriptors.map { Int(lseek($0, 0, SEEK_END)) }
    var raw = Latencies()
    var buffer = [UInt8](repeating: 0, count: 4096)
    for _ in 0..<(quick ? 100_000 : 300_000) {
        let file = Int.random(in: 0..<descriptors.count, using: &generator)
        let position = Int.random(in: 0..<max(sizes[file] - 4096, 1), using: &generator)
        let start = now()
        _ = buffer.withUnsafeMutableBytes { pread(descriptors[file], $0.baseAddress, 4096, off_t(position)) }
        raw.record(now() - start)
    }
    descriptors.forEach { close($0) }
    try log.close()
    report("lookup + read of one ~1 KiB batch, \(log.segmentCount) segments", latencies.summary, "target p99 ≤ 10 µs")
    report("  baseline: pread of 4 KiB at a random position", raw.summary)
}
