extension PartitionLog {
    /// Deletes whole segments past the retention limits, oldest first, never the active one: while the
    /// log is over `retentionBytes` without its oldest segment, and while the oldest segment's newest
    /// record is older than `retentionMilliseconds` before `now` (both only when the cleanup policy
    /// includes `delete`). Files are renamed `.deleted` at once
    /// and unlinked in the background, so readers of a deleted segment are not cut off.
    /// Returns how many segments went.
    @discardableResult
    public func applyRetention(nowMilliseconds now: Int64) throws(StorageError) -> Int {
        if isReadOnly { return 0 }
        let before = segmentCount
        // Segments left below the log start by a failed rename in `advanceLogStart` go first.
        var belowStartFailure: StorageError?
        do throws(StorageError) { try deleteSegmentsBelowLogStart() } catch { belowStartFailure = error }
        let belowStart = before - segmentCount
        let (removed, failure) = state.withLock { state -> (Int, StorageError?) in
            var removed = 0
            var failure: StorageError?
            var total = state.segments.reduce(0) { $0 + Int64($1.size) }
            while state.segments.count > 1 {
                let oldest = state.segments[0]
                let overSize = state.configuration.retentionBytes.map { total - Int64(oldest.size) >= $0 } ?? false
                let expired = state.configuration.retentionMilliseconds.map { oldest.maxTimestamp < now - $0 } ?? false
                // Retention bounds apply only where the cleanup policy includes `delete` (Kafka).
                guard (overSize || expired) && state.configuration.cleanupPolicy.deletes else { break }
                do throws(StorageError) {
                    state.pendingDeletion += try oldest.markDeleted()
                } catch {
                    // The segment is still whole (see `markDeleted`): it stays, and so does the log start.
                    failure = error
                    break
                }
                state.segments.removeFirst()
                total -= Int64(oldest.size)
                removed += 1
            }
            // What did go moves the log start, even when a later segment could not go.
            if removed > 0 {
                state.logStartOffset = max(state.logStartOffset, state.segments[0].baseOffset)
                publishLogStart(state.logStartOffset)
            }
            return (removed, failure)
        }
        deletePendingFiles()
        if let failure = failure ?? belowStartFailure { throw failure }
        return removed + belowStart
    }

    /// Moves the log start forward to `offset` (Kafka's `maybeIncrementLogStartOffset`, for
    /// DeleteRecords): reads below it are refused at once (OFFSET_OUT_OF_RANGE) and whole segments
    /// below it are renamed `.deleted` (the segment holding it stays). Returns whether it moved; an
    /// offset at or below the current start changes nothing.
    ///
    /// Durability: the new start is in memory only until the log manager's next checkpoint
    /// (`LogManager.checkpointLogStarts`); a crash before it reopens the log at the first kept
    /// segment's base, so a caller that promises the move (a DeleteRecords answer) checkpoints first.
    /// A segment whose rename fails stays on disk below the start, unread, until the next retention
    /// pass (`applyRetention`) removes it; the error is thrown after the start moved.
    @discardableResult
    public func advanceLogStart(to offset: Int64) throws(StorageError) -> Bool {
        try refuseIfDamaged()
        let moved = try state.withLock { state throws(StorageError) -> Bool in
            guard !state.closed else { throw StorageError(.closed, path: directory, "the log is closed") }
            guard offset <= logEndOffset else {
                throw StorageError(.offsetOutOfRange, path: directory, "log start \(offset) past the log end \(logEndOffset)")
            }
            guard offset > state.logStartOffset else { return false }
            state.logStartOffset = offset
            publishLogStart(offset)
            return true
        }
        defer { deletePendingFiles() }
        try deleteSegmentsBelowLogStart()
        return moved
    }

    /// Renames `.deleted` every segment wholly below the log start (the next one begins at or before
    /// it); never the active one. A failed rename leaves that segment and the later ones.
    func deleteSegmentsBelowLogStart() throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            while state.segments.count > 1 && state.segments[1].baseOffset <= state.logStartOffset {
                state.pendingDeletion += try state.segments[0].markDeleted()
                state.segments.removeFirst()
            }
        }
    }
}
