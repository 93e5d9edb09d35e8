import Glibc
import NIOCore
public import SamsaRecords
import Synchronization

/// Settings of a segment's files.
public struct SegmentConfiguration: Sendable, Hashable {
    /// Bytes of log between two index entries (Kafka's `index.interval.bytes`).
    public var indexIntervalBytes: Int
    /// Size each index file is preallocated to while its segment is active.
    public var maxIndexSize: Int
    /// Bounds on batches read back from disk.
    public var limits: RecordBatchLimits
    /// Zero-filling ahead of the append position (set by the partition log from its configuration).
    var writeAhead: WriteAhead.Settings?

    public init(indexIntervalBytes: Int = 4096, maxIndexSize: Int = 10 << 20, limits: RecordBatchLimits = .default) {
        self.indexIntervalBytes = indexIntervalBytes
        self.maxIndexSize = maxIndexSize
        self.limits = limits
    }
}

/// One segment of a partition log: `<base>.log` (record batches back to back), its sparse offset index
/// and its time index.
///
/// Threads: one writer (the partition log serialises appends, truncation, recovery and sealing);
/// readers may call `read` concurrently and see batches up to the published size only.
/// Crash behaviour: the `.log` file is the truth. `recover()` validates every batch, truncates at the
/// first invalid byte and rebuilds both indexes.
final class Segment: @unchecked Sendable {
    // @unchecked: writer-only state (`bytesSinceIndexEntry`, `sealed`, `pinned`) is
    // touched only by the single writer; what readers need is published through atomics, and readers
    // reach the file through the descriptor cache.
    let baseOffset: Int64
    let directory: String
    let offsetIndex: OffsetIndex
    let timeIndex: TimeIndex
    let configuration: SegmentConfiguration
    private let files: any FileSystem
    private let descriptors: DescriptorCache
    /// The writer's descriptor, held open (pinned in the cache) while the segment takes appends.
    private var pinned: Int32?
    /// Zeros ahead of the append position while the segment takes appends (nil when configured off).
    private let writeAhead: WriteAhead?
    private let publishedSize = Atomic<Int>(0)
    private let publishedNextOffset: Atomic<Int64>
    private var bytesSinceIndexEntry = 0
    /// The largest timestamp in the segment; written by the writer, read by timestamp lookups.
    private let publishedMaxTimestamp = Atomic<Int64>(-1)
    /// Set once the files are renamed for deletion: a flush that raced with it has nothing to sync.
    private let deleted = Atomic<Bool>(false)
    /// Set once the `.log` file carries its `.deleted` name: reads then open that name, because the
    /// original one may already belong to another segment (a cleaned segment swapped in at the same
    /// base offset, or one rolled there after a truncation).
    private let renamedAway = Atomic<Bool>(false)
    private(set) var sealed = false
    /// See `keepDamaged`.
    private var keepsDamage = false

    var maxTimestamp: Int64 { publishedMaxTimestamp.load(ordering: .acquiring) }

    /// The `.log` file's path, built once: it keys the descriptor cache on every read.
    let logPath: String
    /// Bytes of valid batches in the `.log` file.
    var size: Int { publishedSize.load(ordering: .acquiring) }
    /// The offset after the last batch of this segment (the base offset when empty).
    var nextOffset: Int64 { publishedNextOffset.load(ordering: .acquiring) }

    /// Opens the segment's files, creating them if absent. The end is found from the indexes and the
    /// last index interval of the log (`loadEnd`), or by `recover()` when the caller does not trust it.
    init(
        directory: String, baseOffset: Int64, configuration: SegmentConfiguration, writable: Bool, loadIndexes: Bool = true, files: any FileSystem,
        descriptors: DescriptorCache
    ) throws(StorageError) {
        self.baseOffset = baseOffset
        self.directory = directory
        self.configuration = configuration
        self.files = files
        self.descriptors = descriptors
        let logPath = SegmentFiles.log(directory, baseOffset)
        self.logPath = logPath
        let isNew = writable && !files.fileExists(logPath)
        let pinned = writable ? try descriptors.pin(logPath, create: true) : nil
        self.pinned = pinned
        do throws(StorageError) {
            offsetIndex = try OffsetIndex(
                path: SegmentFiles.index(directory, baseOffset), baseOffset: baseOffset,
                maxSize: configuration.maxIndexSize, writable: writable, load: loadIndexes, files: files, mappings: descriptors.mappings)
            timeIndex = try TimeIndex(
                path: SegmentFiles.timeIndex(directory, baseOffset), baseOffset: baseOffset,
                maxSize: configuration.maxIndexSize, writable: writable, load: loadIndexes, files: files, mappings: descriptors.mappings)
            let size = try descriptors.withDescriptor(logPath) { fd throws(StorageError) in try files.fileSize(fd, path: logPath) }
            publishedSize.store(size, ordering: .releasing)
            writeAhead = writable ? configuration.writeAhead.map {
                WriteAhead(settings: $0, files: files, descriptors: descriptors, path: logPath, fileSize: size)
            } : nil
        } catch {
            if let pinned { descriptors.unpin(logPath, pinned) }
            // A segment this call created leaves nothing behind (a full disk fails the index
            // preallocation after the files exist).
            if isNew {
                descriptors.forget(logPath)
                for path in [logPath, SegmentFiles.index(directory, baseOffset), SegmentFiles.timeIndex(directory, baseOffset)] {
                    try? files.unlink(path)
                }
            }
            throw error
        }
        publishedNextOffset = Atomic(baseOffset)
        sealed = !writable
    }

    deinit {
        // A fill still under way must not write into a file another instance may now own.
        writeAhead?.stop()
        if let pinned { descriptors.unpin(logPath, pinned) }
    }

    /// The writer's descriptor; only the writer calls this, and only before `seal`.
    private func writerDescriptor() -> Int32 {
        guard let pinned else { preconditionFailure("write to a sealed segment \(logPath)") }
        return pinned
    }

    // MARK: - Appending

    /// Appends a batch whose base offset the log has assigned. Adds index entries every
    /// `indexIntervalBytes`. Does not sync.
    func append(_ batch: RecordBatch) throws(StorageError) {
        try append(batch, baseOffset: batch.baseOffset, leaderEpoch: batch.partitionLeaderEpoch)
    }

    /// Appends `batch` as if its base offset and leader epoch were the ones given: the 16 bytes that
    /// hold them (outside the CRC) are written from a stamped copy and the rest straight from the
    /// caller's buffer, in one pwritev, so appending never copies the batch.
    func append(_ batch: RecordBatch, baseOffset: Int64, leaderEpoch: Int32) throws(StorageError) {
        precondition(!sealed, "append to a sealed segment")
        guard baseOffset >= nextOffset else {
            throw StorageError(.invalidArgument, path: logPath, "batch at offset \(baseOffset) is before the segment's end \(nextOffset)")
        }
        guard Self.fitsRelativeOffsets(last: baseOffset + Int64(batch.lastOffsetDelta), base: self.baseOffset) else {
            throw StorageError(
                .invalidArgument, path: logPath,
                "batch at offset \(baseOffset) ends more than \(Int32.max) offsets past the segment's base \(self.baseOffset)")
        }
        let position = size
        // Room for the index entries this batch adds, before anything is written (growing an index
        // needs disk space, which may be gone).
        if indexEntryDue {
            try offsetIndex.reserveNextEntry()
            try timeIndex.reserveNextEntry()
        }
        let fd = writerDescriptor()
        var head = (baseOffset.bigEndian, batch.batchLength.bigEndian, leaderEpoch.bigEndian)
        let failure: StorageError? = withUnsafeBytes(of: &head) { headBytes in
            batch.buffer.withUnsafeReadableBytes { raw in
                do throws(StorageError) {
                    let tail = UnsafeRawBufferPointer(rebasing: raw[Self.stampedPrefixLength...])
                    if let writeAhead {
                        try writeAhead.write(position..<position + raw.count) { () throws(StorageError) in
                            try files.pwrite(fd, head: headBytes, tail: tail, at: position, path: logPath)
                        }
                    } else {
                        try files.pwrite(fd, head: headBytes, tail: tail, at: position, path: logPath)
                    }
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let failure {
            // A write that failed part way may have left some bytes past the end: cut them now (best
            // effort; sealing and recovery cut them too), so nothing but whole batches stays in the file.
            if writeAhead == nil { try? files.ftruncate(fd, to: position, path: logPath) }
            throw failure
        }
        let lastOffset = baseOffset + Int64(batch.lastOffsetDelta)
        try noteAppended(baseOffset: baseOffset, lastOffset: lastOffset, maxTimestamp: batch.maxTimestamp, size: batch.sizeInBytes, at: position)
    }

    /// Base offset, batch length and partition leader epoch: the bytes before the magic byte.
    private static let stampedPrefixLength = RecordBatchLayout.magicOffset

    /// Index bookkeeping for a batch now at `position`, then publishes the new end to readers.
    private func noteAppended(baseOffset: Int64, lastOffset: Int64, maxTimestamp batchMaxTimestamp: Int64, size: Int, at position: Int)
        throws(StorageError)
    {
        if batchMaxTimestamp > maxTimestamp { publishedMaxTimestamp.store(batchMaxTimestamp, ordering: .releasing) }
        if indexEntryDue {
            try offsetIndex.append(offset: baseOffset, position: position)
            // Every record up to this batch's last offset has a timestamp ≤ maxTimestamp.
            try timeIndex.appendIfLarger(timestamp: maxTimestamp, offset: lastOffset)
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += size
        publishedNextOffset.store(lastOffset + 1, ordering: .releasing)
        publishedSize.store(position + size, ordering: .releasing)
    }

    /// The next batch gets index entries (every `indexIntervalBytes`, while the indexes have room).
    private var indexEntryDue: Bool {
        bytesSinceIndexEntry >= configuration.indexIntervalBytes && !offsetIndex.isFull && !timeIndex.isFull
    }

    /// True when an index has no room for another entry: the log should roll.
    var indexIsFull: Bool { offsetIndex.isFull || timeIndex.isFull }

    // MARK: - Reading

    /// Whole batches starting with the one that holds `offset`, up to `maxBytes` (with
    /// `wholeFirstBatch`, at least one batch however large) and never past `endPosition`. Nil when no
    /// batch at or after `offset` is there; empty when the first one does not fit (the read stops:
    /// later segments hold later offsets).
    ///
    /// One pread usually does it all: it covers the index interval to scan for `offset` and the bytes
    /// to return, and the result is a slice of it. Headers outside it, or a first batch larger than
    /// `maxBytes`, cost one more read each.
    func read(
        from offset: Int64, maxBytes: Int, wholeFirstBatch: Bool = true, endPosition: Int? = nil, visibleEnd: Int64 = .max
    ) throws(StorageError) -> ByteBuffer? {
        let end = min(endPosition ?? size, size)
        let windowStart = offset > baseOffset ? offsetIndex.lookup(offset).position : 0
        guard windowStart < end else { return nil }
        let window = try readBytes(
            at: windowStart,
            count: min(end - windowStart, configuration.indexIntervalBytes + max(maxBytes, RecordBatchLayout.headerLength) + RecordBatchLayout.headerLength))
        let span = try batchSpan(from: offset, maxBytes: maxBytes, wholeFirstBatch: wholeFirstBatch, end: end, visibleEnd: visibleEnd) {
            position throws(StorageError) in
            let inWindow = position - windowStart
            if inWindow + RecordBatchLayout.headerLength <= window.readableBytes {
                return try parseHeader(window.getSlice(at: window.readerIndex + inWindow, length: RecordBatchLayout.headerLength)!, at: position, end: end)
            }
            return try readHeader(at: position, end: end)
        }
        guard let span else { return nil }
        if span.isEmpty { return ByteBuffer() }
        if span.upperBound <= windowStart + window.readableBytes {
            return window.getSlice(at: window.readerIndex + span.lowerBound - windowStart, length: span.count)
        }
        return try readBytes(at: span.lowerBound, count: span.count)
    }

    /// The batches `read` would return, as a range of this segment's file held open by a duplicated
    /// descriptor (zero-copy sends). The headers are read through that descriptor, so the range is
    /// checked against the very file it will be sent from. An empty range (its descriptor already
    /// closed) where `read` returns no bytes.
    func slice(from offset: Int64, maxBytes: Int, wholeFirstBatch: Bool = true, visibleEnd: Int64 = .max) throws(StorageError) -> SegmentSlice? {
        let end = size
        guard (offset > baseOffset ? offsetIndex.lookup(offset).position : 0) < end else { return nil }
        let file = try withReadDescriptor { fd throws(StorageError) in try SegmentSlice.File(duplicating: fd, path: logPath) }
        let span = try batchSpan(from: offset, maxBytes: maxBytes, wholeFirstBatch: wholeFirstBatch, end: end, visibleEnd: visibleEnd) {
            position throws(StorageError) in
            guard position + RecordBatchLayout.headerLength <= end else { return nil }
            return try parseHeader(try file.read(at: position, count: RecordBatchLayout.headerLength, files: files), at: position, end: end)
        }
        guard let span else { return nil }
        if span.isEmpty { file.close() }
        return SegmentSlice(file: file, range: span)
    }

    /// Where `read` finds its batches: from the one holding `offset` (at most one index interval of
    /// headers from the index's hint), whole batches while they fit in `maxBytes` (with
    /// `wholeFirstBatch`, at least one however large: Kafka's `minOneMessage`), none with a base
    /// offset at or after `visibleEnd`, never past `end`. Nil when no such batch is here; empty
    /// (at the first batch) when it does not fit.
    private func batchSpan(
        from offset: Int64, maxBytes: Int, wholeFirstBatch: Bool, end: Int, visibleEnd: Int64, header: (Int) throws(StorageError) -> BatchHeader?
    ) throws(StorageError) -> Range<Int>? {
        var position = offset > baseOffset ? offsetIndex.lookup(offset).position : 0
        var start: Int?
        while position < end, let current = try header(position) {
            if current.lastOffset >= offset {
                start = position
                break
            }
            position += current.size
        }
        guard let start else { return nil }
        var length = 0
        var visible = false
        while position < end, let current = try header(position) {
            if current.baseOffset >= visibleEnd { break }
            visible = true
            if length + current.size > maxBytes && (length > 0 || !wholeFirstBatch) { break }
            length += current.size
            position += current.size
            if length >= maxBytes { break }
        }
        guard visible else { return nil }
        return start..<start + length
    }

    /// The file position of the batch holding `offset` (or the first after it), scanning at most one
    /// index interval of batch headers from the index's hint.
    func position(of offset: Int64, end: Int? = nil) throws(StorageError) -> Int? {
        let end = min(end ?? size, size)
        var position = offset > baseOffset ? offsetIndex.lookup(offset).position : 0
        while position < end {
            guard let header = try readHeader(at: position, end: end) else { return nil }
            if header.lastOffset >= offset { return position }
            position += header.size
        }
        return nil
    }

    /// The segment's end once `truncate(from: offset)` has cut it: the end of the last batch before
    /// the one holding `offset` (or the first after it): that batch's base offset in a contiguous
    /// log, lower when a gap (offsets a cleaner removed) comes first; the segment's base when no batch
    /// stays.
    func endAfterTruncating(from offset: Int64) throws(StorageError) -> Int64 {
        // From the index entry before the one for `offset`, so the batch before it is read too
        // (an entry is a batch's base offset: the batch there ends before the entry after it).
        let hint = offsetIndex.lookup(offset)
        var position = hint.offset > baseOffset ? offsetIndex.lookup(hint.offset - 1).position : 0
        var previousEnd = baseOffset
        while position < size, let header = try readHeader(at: position, end: size) {
            if header.lastOffset >= offset { return previousEnd }
            previousEnd = header.lastOffset + 1
            position += header.size
        }
        return nextOffset
    }

    /// Whether offsets up to `last` fit a segment based at `base`: index entries hold offsets relative
    /// to the base in 32 bits, and Kafka keeps them to Int32 (`LogSegment.canConvertToRelativeOffset`).
    static func fitsRelativeOffsets(last: Int64, base: Int64) -> Bool {
        last >= base && last - base <= Int64(Int32.max)
    }

    /// What the first bytes of a batch say about it.
    struct BatchHeader {
        var baseOffset: Int64
        var lastOffset: Int64
        var size: Int
        var maxTimestamp: Int64
    }

    private func readHeader(at position: Int, end: Int) throws(StorageError) -> BatchHeader? {
        guard position + RecordBatchLayout.headerLength <= end else { return nil }
        return try parseHeader(try readBytes(at: position, count: RecordBatchLayout.headerLength), at: position, end: end)
    }

    /// The header fields of the batch whose first bytes are `bytes`, found at file `position`.
    private func parseHeader(_ bytes: ByteBuffer, at position: Int, end: Int) throws(StorageError) -> BatchHeader {
        let start = bytes.readerIndex
        let baseOffset = bytes.getInteger(at: start + RecordBatchLayout.baseOffsetOffset, as: Int64.self)!
        let length = Int(bytes.getInteger(at: start + RecordBatchLayout.batchLengthOffset, as: Int32.self)!)
        let lastDelta = bytes.getInteger(at: start + RecordBatchLayout.lastOffsetDeltaOffset, as: Int32.self)!
        let maxTimestamp = bytes.getInteger(at: start + RecordBatchLayout.maxTimestampOffset, as: Int64.self)!
        let size = length + RecordBatchLayout.lengthPrefixLength
        guard length >= RecordBatchLayout.minimumBatchLength, position + size <= end else {
            throw StorageError(.corrupt, path: logPath, "batch header at position \(position) claims \(size) bytes")
        }
        return BatchHeader(baseOffset: baseOffset, lastOffset: baseOffset + Int64(lastDelta), size: size, maxTimestamp: maxTimestamp)
    }

    /// Runs `body` with a descriptor of this segment's own `.log` file, under whichever name it has.
    /// The flag is checked again once the descriptor is held: a rename (and a new file taking the
    /// name) between the first check and the open would otherwise hand out the other segment's file.
    private func withReadDescriptor<R>(_ body: (Int32) throws(StorageError) -> R) throws(StorageError) -> R {
        if !renamedAway.load(ordering: .sequentiallyConsistent) {
            let result: R? = try descriptors.withDescriptor(logPath) { fd throws(StorageError) -> R? in
                renamedAway.load(ordering: .sequentiallyConsistent) ? nil : try body(fd)
            }
            if let result { return result }
        }
        return try descriptors.withDescriptor(logPath + SegmentFiles.deletedSuffix, body)
    }

    func readBytes(at position: Int, count: Int) throws(StorageError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var result: Result<Int, StorageError> = .success(0)
        _ = try withReadDescriptor { fd throws(StorageError) in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                result = Result { () throws(StorageError) in
                    try files.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<count]), at: position, path: logPath)
                }
                return (try? result.get()) ?? 0
            }
        }
        let read = try result.get()
        guard read == count else {
            throw StorageError(.corrupt, path: logPath, "read \(read) of \(count) bytes at position \(position): file is shorter")
        }
        return buffer
    }

    // MARK: - Recovery, end of log, truncation

    /// What a recovery scan did.
    struct RecoveryResult: Equatable {
        var validBytes: Int
        var truncatedBytes: Int
        /// Of `truncatedBytes`, how many were a tail of zeros only (write-ahead space, or blocks whose
        /// data never reached the disk).
        var zeroTailBytes: Int
        var batches: Int
    }

    /// Validates every batch from the start (length, magic, CRC-32C, codec, offsets increasing from
    /// `expectedBaseOffset`), truncates the file at the first invalid byte and rebuilds both indexes.
    func recover(expectedBaseOffset: Int64? = nil) throws(StorageError) -> RecoveryResult {
        let result = try scan(expectedBaseOffset: expectedBaseOffset)
        try cutTail(result)
        return result
    }

    /// Validates every batch from the start and rebuilds both indexes for the valid prefix, which
    /// becomes the segment's size; the file itself is not changed (the caller decides whether the
    /// rest is a torn tail to `cutTail`, or damage to keep for inspection).
    func scan(expectedBaseOffset: Int64? = nil) throws(StorageError) -> RecoveryResult {
        offsetIndex.reset()
        timeIndex.reset()
        bytesSinceIndexEntry = 0
        publishedMaxTimestamp.store(-1, ordering: .releasing)
        publishedNextOffset.store(baseOffset, ordering: .releasing)
        let fd = writerDescriptor()
        let fileSize = try files.fileSize(fd, path: logPath)
        publishedSize.store(0, ordering: .releasing)
        var scanner = BatchScanner(segment: self, fileSize: fileSize)
        var batches = 0
        var nextOffset = expectedBaseOffset ?? baseOffset
        while let (batch, position) = try scanner.next() {
            guard batch.baseOffset >= nextOffset, batch.lastOffset >= batch.baseOffset else { break }
            try noteAppended(baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, maxTimestamp: batch.maxTimestamp, size: batch.sizeInBytes, at: position)
            nextOffset = batch.nextOffset
            batches += 1
        }
        let valid = size
        var zeroTail = 0
        if valid < fileSize, try tailIsZeros(from: valid, to: fileSize) { zeroTail = fileSize - valid }
        return RecoveryResult(validBytes: valid, truncatedBytes: fileSize - valid, zeroTailBytes: zeroTail, batches: batches)
    }

    /// Cuts the file to the valid prefix a `scan` found.
    func cutTail(_ result: RecoveryResult) throws(StorageError) {
        try cutFile(writerDescriptor(), to: result.validBytes, fileSize: result.validBytes + result.truncatedBytes, restartWriteAhead: true)
    }

    /// After a clean shutdown: trusts the log's size, checks the indexes, and finds the end offset and
    /// largest timestamp from the last index entry forward. Throws `.corrupt` when an index fails its
    /// sanity check or the tail is not whole batches; the caller then runs `recover()`.
    func loadEnd() throws(StorageError) {
        let end = size
        try offsetIndex.sanityCheck(segmentSize: end)
        var position = offsetIndex.entryCount > 0 ? offsetIndex.entry(offsetIndex.entryCount - 1).position : 0
        var next = baseOffset
        var maxTimestamp = timeIndex.lastEntry?.timestamp ?? -1
        bytesSinceIndexEntry = 0
        while position < end {
            guard let header = try readHeader(at: position, end: end) else {
                throw StorageError(.corrupt, path: logPath, "the log ends inside a batch at position \(position)")
            }
            next = header.lastOffset + 1
            maxTimestamp = max(maxTimestamp, header.maxTimestamp)
            position += header.size
            bytesSinceIndexEntry += header.size
        }
        try timeIndex.sanityCheck(nextOffset: next)
        publishedMaxTimestamp.store(maxTimestamp, ordering: .releasing)
        publishedNextOffset.store(next, ordering: .releasing)
    }

    /// For read-only opens, which may not repair anything: finds the end like `loadEnd`, but stops at
    /// the first batch header that is incomplete or does not follow (a live writer's batch in progress,
    /// or a crash's torn tail) instead of failing, and ignores an index that fails its sanity check.
    /// With `continuing`, picks up from the end found before (a live writer appended meanwhile).
    /// Returns true when the whole file was whole batches.
    @discardableResult
    func loadEndForReading(continuing: Bool = false) throws(StorageError) -> Bool {
        let fileSize = try descriptors.withDescriptor(logPath) { fd throws(StorageError) in try files.fileSize(fd, path: logPath) }
        var position: Int
        var next: Int64
        var maxTimestamp: Int64
        if continuing {
            position = size
            next = nextOffset
            maxTimestamp = self.maxTimestamp
        } else {
            if (try? offsetIndex.sanityCheck(segmentSize: fileSize)) == nil { offsetIndex.ignoreEntries() }
            position = offsetIndex.entryCount > 0 ? offsetIndex.entry(offsetIndex.entryCount - 1).position : 0
            next = offsetIndex.entryCount > 0 ? offsetIndex.entry(offsetIndex.entryCount - 1).offset : baseOffset
            maxTimestamp = timeIndex.lastEntry?.timestamp ?? -1
        }
        while position < fileSize {
            guard let header = try? readHeader(at: position, end: fileSize), header.baseOffset >= next, header.lastOffset >= header.baseOffset else {
                break
            }
            next = header.lastOffset + 1
            maxTimestamp = max(maxTimestamp, header.maxTimestamp)
            position += header.size
        }
        if !continuing, (try? timeIndex.sanityCheck(nextOffset: next)) == nil { timeIndex.ignoreEntries() }
        publishedMaxTimestamp.store(maxTimestamp, ordering: .releasing)
        publishedNextOffset.store(next, ordering: .releasing)
        publishedSize.store(position, ordering: .releasing)
        return position == fileSize
    }

    /// Removes the batch holding `offset` and everything after it; returns the segment's new end offset.
    @discardableResult
    func truncate(from offset: Int64) throws(StorageError) -> Int64 {
        guard let position = try position(of: offset), let removed = try readHeader(at: position, end: size) else {
            return nextOffset
        }
        try cutFile(writerDescriptor(), to: position, fileSize: nil, restartWriteAhead: true)
        // Index entries for the removed batches go too, from the first removed batch's base offset.
        offsetIndex.truncate(from: removed.baseOffset)
        timeIndex.truncate(from: removed.baseOffset)
        publishedSize.store(position, ordering: .releasing)
        // Re-derive the end and the index bookkeeping from what is left.
        try loadEnd()
        return nextOffset
    }

    /// Cuts the `.log` file to `size`, through the write-ahead when there is one (it must not fill
    /// behind the cut).
    private func cutFile(_ fd: Int32, to size: Int, fileSize: Int?, restartWriteAhead: Bool) throws(StorageError) {
        if let writeAhead {
            try writeAhead.cut(to: size, fd: fd, restart: restartWriteAhead)
        } else if fileSize.map({ size < $0 }) ?? true {
            try files.ftruncate(fd, to: size, path: logPath)
        }
    }

    /// True when every byte of the file in `start..<end` is zero.
    private func tailIsZeros(from start: Int, to end: Int) throws(StorageError) -> Bool {
        var position = start
        while position < end {
            let chunk = try readBytes(at: position, count: min(end - position, 1 << 20))
            let zeros = chunk.withUnsafeReadableBytes { raw in raw.allSatisfy { $0 == 0 } }
            if !zeros { return false }
            position += chunk.readableBytes
        }
        return true
    }

    // MARK: - Durability and lifecycle

    /// fdatasync of the `.log` file. Indexes are not synced: recovery rebuilds them.
    func flush() throws(StorageError) {
        guard !deleted.load(ordering: .acquiring) else { return }
        do throws(StorageError) {
            // Through the cache: a flush may run on the flusher's thread after the writer sealed the segment.
            try descriptors.withDescriptor(logPath) { fd throws(StorageError) in
                if let writeAhead {
                    try writeAhead.sync(fd)
                } else {
                    try files.fdatasync(fd, path: logPath)
                }
            }
        } catch {
            // A truncation or retention removed the segment while this flush ran: its bytes are gone
            // on purpose, there is nothing left to make durable.
            if deleted.load(ordering: .acquiring) { return }
            throw error
        }
    }

    /// A failed fdatasync of the write-ahead fill (see `WriteAhead.sync`): the log fails its next
    /// flush with it even when this segment has nothing left to flush.
    var writeAheadSyncFailure: StorageError? { writeAhead?.syncFailure }

    /// The segment holds damage that recovery keeps for inspection: from now on nothing may cut its
    /// file (sealing and deletion cut write-ahead space back to `size`, the valid prefix).
    func keepDamaged() {
        writeAhead?.stop()
        keepsDamage = true
    }

    /// The segment stops taking appends: indexes are cut to their entries.
    func seal() throws(StorageError) {
        guard !sealed else { return }
        if let writeAhead, let pinned, !keepsDamage { try writeAhead.cut(to: size, fd: pinned, restart: false) }
        // Bytes of a failed write past the last batch (see `append`): a sealed segment holds whole
        // batches only, or the next open would take them for damage below the recovery point.
        if writeAhead == nil, let pinned, !keepsDamage, try files.fileSize(pinned, path: logPath) > size {
            try files.ftruncate(pinned, to: size, path: logPath)
        }
        try offsetIndex.trim()
        try timeIndex.trim()
        sealed = true
        if let pinned { descriptors.unpin(logPath, pinned) }
        pinned = nil
    }

    /// Drops the cached descriptor of the `.log` once no reader uses it (the log closed): a later
    /// segment at the same path, after the partition was deleted and created again, must not be
    /// written through a descriptor of the old file.
    func forgetDescriptor() {
        descriptors.forget(logPath)
    }

    /// Renames the segment's files to `.deleted`, so readers holding it keep their open file while the
    /// names disappear from the directory. Returns the new paths, for deletion later.
    func markDeleted() throws(StorageError) -> [String] {
        if let writeAhead, let pinned, !keepsDamage { try writeAhead.cut(to: size, fd: pinned, restart: false) }
        // The indexes first and the `.log` last: the `.log` rename is the step that deletes the
        // segment, so a failure before it leaves a whole, readable segment (lookups without an index
        // scan from its start), and the next open removes the renamed leftovers.
        var renamed: [String] = []
        for (path, markRenamed) in [(offsetIndex.path, offsetIndex.markRenamed), (timeIndex.path, timeIndex.markRenamed)] where files.fileExists(path) {
            try files.rename(path, to: path + SegmentFiles.deletedSuffix)
            markRenamed()
            renamed.append(path + SegmentFiles.deletedSuffix)
        }
        deleted.store(true, ordering: .releasing)
        do throws(StorageError) {
            try files.rename(logPath, to: logPath + SegmentFiles.deletedSuffix)
        } catch {
            deleted.store(false, ordering: .releasing)
            throw error
        }
        renamedAway.store(true, ordering: .sequentiallyConsistent)
        renamed.append(logPath + SegmentFiles.deletedSuffix)
        if let pinned { descriptors.unpin(logPath, pinned) }
        pinned = nil
        descriptors.forget(logPath)
        offsetIndex.close()
        timeIndex.close()
        return renamed
    }
}

/// Reads a segment front to back in large windows and yields each valid batch; stops at the first
/// byte that does not start a valid batch (torn write, garbage, corruption).
struct BatchScanner {
    private let segment: Segment
    private let fileSize: Int
    private var window = ByteBuffer()
    private var windowStart = 0
    private var position = 0
    private static let windowSize = 1 << 20

    init(segment: Segment, fileSize: Int) {
        self.segment = segment
        self.fileSize = fileSize
    }

    mutating func next() throws(StorageError) -> (RecordBatch, position: Int)? {
        guard position < fileSize else { return nil }
        if try !ensureWindow(holds: RecordBatchLayout.sizeProbeLength) { return nil }
        let size: Int
        do {
            guard let probed = try RecordBatch.size(ofBatchAtStartOf: view(), limits: segment.configuration.limits) else { return nil }
            size = probed
        } catch {
            return nil
        }
        guard position + size <= fileSize, try ensureWindow(holds: size) else { return nil }
        guard let batch = try? RecordBatch(validating: view(), limits: segment.configuration.limits) else { return nil }
        defer { position += size }
        return (batch, position)
    }

    private func view() -> ByteBuffer {
        window.getSlice(at: window.readerIndex + position - windowStart, length: windowStart + window.readableBytes - position)!
    }

    /// Makes sure `count` bytes from `position` are in the window; false when the file ends first.
    private mutating func ensureWindow(holds count: Int) throws(StorageError) -> Bool {
        if position >= windowStart && position + count <= windowStart + window.readableBytes { return true }
        let length = min(max(count, Self.windowSize), fileSize - position)
        guard length >= count else { return false }
        window = try segment.readBytes(at: position, count: length)
        windowStart = position
        return true
    }
}
