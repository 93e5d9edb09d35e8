import Dispatch
import Synchronization

/// Zero-fills an active segment's `.log` file ahead of its append position, on a background queue, and
/// syncs the zeros, so that appends overwrite blocks the file system already has instead of extending
/// the file.
///
/// Why: an fdatasync after writes that extend a file must also commit the new size and extents; after
/// writes into blocks already written and synced it flushes only data. On these machines that makes a
/// durable 4 KiB append ~1.5× and a 64 KiB–1 MiB one 2–3× faster (`limits.md`); the benchmarks measure
/// what it buys through the whole log (README). The price: each byte reaches the disk twice (zeros,
/// then data) and the file is longer than its batches until the segment is sealed or closed, where it
/// is cut back. Recovery never trusts the file size anyway: it validates batches and stops at the first
/// that is not one (zeros are not).
///
/// Threads: the segment's single writer calls `write` and `cut`; the zero-filling runs on a global
/// queue. They never write the same bytes: the filler writes only at or past `filledEnd`, the writer's
/// fast path only below it; a write reaching past it takes the lock the filler holds while it writes.
final class WriteAhead: Sendable {
    struct Settings: Sendable, Hashable {
        /// Zeros are kept at least this far ahead of the append position (filled in steps of this size).
        var chunkBytes: Int
        /// The file is never filled past this size (the segment rolls there).
        var limitBytes: Int
    }

    private struct State {
        /// The file holds bytes (zeros or batches) up to here.
        var filledEnd: Int
        /// The end of the last write that took the slow path (past `filledEnd` when it started).
        var writtenEnd = 0
        var stopped = false
    }

    private let settings: Settings
    private let files: any FileSystem
    private let descriptors: DescriptorCache
    private let path: String
    private let state: Mutex<State>
    /// `filledEnd`, readable without the lock by the writer's fast path; it only grows until `cut`.
    private let filledEndHint: Atomic<Int>
    private let filling = Atomic<Bool>(false)
    /// A failure of the background fill; appends go on without write-ahead and the next sync reports
    /// any real disk problem.
    private let failed = Atomic<Bool>(false)
    /// The first failed fdatasync of this file, by the filler or the log; see `sync`.
    private let syncLock = Mutex<StorageError?>(nil)

    init(settings: Settings, files: any FileSystem, descriptors: DescriptorCache, path: String, fileSize: Int) {
        self.settings = settings
        self.files = files
        self.descriptors = descriptors
        self.path = path
        state = Mutex(State(filledEnd: fileSize))
        filledEndHint = Atomic(fileSize)
    }

    /// Runs `body`, which writes `range` of the file, without racing the filler; then starts a fill if
    /// the zeros ahead of `range` run short.
    func write<E: Error>(_ range: Range<Int>, _ body: () throws(E) -> Void) throws(E) {
        if range.upperBound <= filledEndHint.load(ordering: .acquiring) {
            try body()
        } else {
            try state.withLock { state throws(E) in
                try body()
                state.writtenEnd = max(state.writtenEnd, range.upperBound)
            }
        }
        if filledEndHint.load(ordering: .relaxed) - range.upperBound < settings.chunkBytes / 2 { startFill() }
    }

    /// Stops filling and cuts the file to `size` (the end of its last valid batch). Used on seal,
    /// close, truncation and recovery; `restart` lets filling resume afterwards (truncation).
    func cut(to size: Int, fd: Int32, restart: Bool) throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            // The file size, not `filledEnd`, decides: zeros from an earlier run may lie past both.
            if try files.fileSize(fd, path: path) > size {
                try files.ftruncate(fd, to: size, path: path)
            }
            state.filledEnd = size
            state.writtenEnd = size
            state.stopped = !restart
            filledEndHint.store(size, ordering: .releasing)
        }
    }

    /// No more filling; returns once a fill under way has finished writing (its sync may still run).
    func stop() {
        state.withLock { $0.stopped = true }
    }

    private func startFill() {
        guard !failed.load(ordering: .relaxed), filling.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            fill()
            filling.store(false, ordering: .releasing)
        }
    }

    /// Writes one chunk of zeros past everything written, then syncs it.
    private func fill() {
        do throws(StorageError) {
            let filled = try state.withLock { state throws(StorageError) -> Bool in
                let start = max(state.filledEnd, state.writtenEnd)
                let end = min(start + settings.chunkBytes, settings.limitBytes)
                guard !state.stopped, end > start else { return false }
                try descriptors.withDescriptor(path) { fd throws(StorageError) in try writeZeros(fd, from: start, to: end) }
                state.filledEnd = end
                filledEndHint.store(end, ordering: .releasing)
                return true
            }
            // Synced outside the state lock: the writer keeps appending meanwhile.
            if filled { try descriptors.withDescriptor(path) { fd throws(StorageError) in try sync(fd) } }
        } catch {
            failed.store(true, ordering: .relaxed)
        }
    }

    /// The first failed fdatasync of this file, if any.
    var syncFailure: StorageError? { syncLock.withLock { $0 } }

    /// fdatasync of the file, shared by the filler and the log's flushes. On Linux a failed fdatasync
    /// reports its error once per open file, and the filler shares the log's descriptor: if the filler's
    /// sync took the error, the log's next sync could succeed and acknowledge data the failure lost
    /// (fsyncgate). So every sync goes through here, one at a time (`syncLock` is held across the call
    /// on purpose, so a failure is recorded before the next sync can begin), and once one has failed
    /// every later one fails too.
    func sync(_ fd: Int32) throws(StorageError) {
        try syncLock.withLock { failure throws(StorageError) in
            if let failure { throw failure }
            do throws(StorageError) {
                try files.fdatasync(fd, path: path)
            } catch {
                failure = error
                throw error
            }
        }
    }

    private func writeZeros(_ fd: Int32, from start: Int, to end: Int) throws(StorageError) {
        var position = start
        while position < end {
            let count = min(end - position, zeroPage.count)
            try files.pwrite(fd, UnsafeRawBufferPointer(rebasing: zeroPage[..<count]), at: position, path: path)
            position += count
        }
    }
}

/// 1 MiB of zeros, the source of every fill.
private nonisolated(unsafe) let zeroPage = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096).initializeMemory(as: UInt8.self, repeating: 0))
