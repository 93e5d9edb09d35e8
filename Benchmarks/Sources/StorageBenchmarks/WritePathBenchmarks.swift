import Foundation
import Glibc
import SamsaTool

/// How a durable commit reaches the disk, at the syscall level: the ceiling each write path gives
/// the log (issue 12). Every path writes the same bytes, then fdatasyncs, one commit at a time.
enum WritePath: CaseIterable {
    /// write(2) past the end: the sync also commits the new size and extents.
    case extending
    /// Into space reserved with fallocate(FALLOC_FL_KEEP_SIZE): blocks exist, unwritten, size unchanged.
    case fallocatedKeepSize
    /// Into space reserved with fallocate(mode 0): the size is set, the extents are still unwritten.
    case fallocated
    /// Over blocks written (zeros) and synced first: the sync flushes data only.
    case overwriting
    /// O_DIRECT from an aligned buffer, extending.
    case directExtending
    /// O_DIRECT over blocks written and synced first.
    case directOverwriting

    var label: String {
        switch self {
        case .extending: "buffered, extending"
        case .fallocatedKeepSize: "buffered, fallocate KEEP_SIZE"
        case .fallocated: "buffered, fallocate (size set)"
        case .overwriting: "buffered, overwriting written blocks"
        case .directExtending: "O_DIRECT, extending"
        case .directOverwriting: "O_DIRECT, overwriting written blocks"
        }
    }

    var direct: Bool { self == .directExtending || self == .directOverwriting }
}

/// glibc's fallocate(2) and O_DIRECT are behind _GNU_SOURCE, which Swift's Glibc module does not
/// define: the function is looked up at run time and the flag is x86-64/aarch64 Linux's value.
private let fallocateFunction = unsafeBitCast(
    dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate")!, to: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32).self)
#if arch(x86_64)
private let openDirect: Int32 = 0o40000
#else
private let openDirect: Int32 = 0o200000
#endif

/// 6. write + fdatasync per commit at 4 KiB, 64 KiB and 1 MiB along every `WritePath`, interleaved
/// run by run; ratios against extending (what an active segment does by default).
func durableWritePath() {
    let duration: UInt64 = quick ? 500_000_000 : 1_000_000_000
    print("\n## Durable write path: write + fdatasync per commit, one thread, medians of \(runs) interleaved runs")
    for size in [4096, 64 << 10, 1 << 20] {
        let label = size >= 1 << 20 ? "\(size >> 20) MiB" : "\(size >> 10) KiB"
        var rates: [WritePath: [Double]] = [:]
        var latencies: [WritePath: Latencies] = [:]
        for run in 0..<runs {
            // Rotate the order so no path always runs first (or last) on a shared machine.
            let paths = WritePath.allCases
            for offset in 0..<paths.count {
                let path = paths[(offset + run) % paths.count]
                let (rate, measured) = syncedWrites(path, size: size, duration: duration)
                rates[path, default: []].append(rate)
                latencies[path, default: Latencies()].merge(measured)
            }
        }
        let baseline = median(rates[.extending]!)
        for path in WritePath.allCases {
            let rate = median(rates[path]!)
            report(
                "\(label) commits, \(path.label)", "\(formatCount(rate)) commits, \(formatRate(rate * Double(size)))",
                "\(String(format: "%.2f", rate / baseline))x extending; sync \(latencies[path]!.summary)")
        }
    }
}

/// Commits `size` bytes at a time along `path` for `duration` nanoseconds; commits per second and
/// the latency of each write + fdatasync.
func syncedWrites(_ path: WritePath, size: Int, duration: UInt64) -> (Double, Latencies) {
    let dir = scratchDirectory("writepath")
    defer { cleanUp(dir) }
    let file = dir + "/segment.log"
    // Space for the run: ~12 k commits/s or 1.25 GB/s at most (a faster path stops early: its rate holds).
    let reserve = (Int(min(Double(size) * 12_000, 2.5e9 / 2) * seconds(duration)) / (1 << 20) + 1) << 20
    var fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "open failed: \(errno)")
    switch path {
    case .fallocatedKeepSize: precondition(fallocateFunction(fd, 1 /* FALLOC_FL_KEEP_SIZE */, 0, off_t(reserve)) == 0, "fallocate: \(errno)")
    case .fallocated: precondition(fallocateFunction(fd, 0, 0, off_t(reserve)) == 0, "fallocate: \(errno)")
    case .overwriting, .directOverwriting:
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        zeros.withUnsafeBytes { raw in for _ in 0..<(reserve >> 20) { writeAll(fd, raw) } }
        fdatasync(fd)
    default: break
    }
    if path.direct {
        close(fd)
        fd = open(file, O_RDWR | openDirect, 0o600)
        precondition(fd >= 0, "open O_DIRECT failed: \(errno)")
    }
    defer { close(fd) }
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    var events = SyntheticEvents()
    var filled = 0
    while filled < size {
        let event = events.next(size: min(1000, size - filled))
        event.withUnsafeBytes { (buffer + filled).copyMemory(from: $0.baseAddress!, byteCount: event.count) }
        filled += event.count
    }
    var latencies = Latencies()
    var commits = 0
    var offset = 0
    let start = now()
    while now() - start < duration && offset + size <= reserve {
        let before = now()
        var done = 0
        while done < size {
            let n = pwrite(fd, buffer + done, size - done, off_t(offset + done))
            precondition(n > 0, "pwrite failed: \(errno)")
            done += n
        }
        fdatasync(fd)
        latencies.record(now() - before)
        offset += size
        commits += 1
    }
    return (Double(commits) / seconds(now() - start), latencies)
}
