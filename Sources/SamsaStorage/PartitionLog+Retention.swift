extension PartitionLog {
    /// Deletes whole segments past the retention limits, oldest first, never the active one: while the
    /// log is over `retentionBytes` without its oldest segment, and while the oldest segment's newest
    /// record is older than `retentionMilliseconds` before `now`. Files are renamed `.deleted` at once
    /// and unlinked in the background, so readers of a deleted segment are not cut off.
    /// Returns how many segments went.
    @discardableResult
    public func applyRetention(nowMilliseconds now: Int64) throws(StorageError) -> Int {
        if isReadOnly { return 0 }
        let (removed, failure) = state.withLock { state -> (Int, StorageError?) in
            var removed = 0
            var failure: StorageError?
            var total = state.segments.reduce(0) { $0 + Int64($1.size) }
            while state.segments.count > 1 {
                let oldest = state.segments[0]
                let overSize = state.configuration.retentionBytes.map { total - Int64(oldest.size) >= $0 } ?? false
                let expired = state.configuration.retentionMilliseconds.map { oldest.maxTimestamp < now - $0 } ?? false
                guard overSize || expired else { break }
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
        if let failure { throw failure }
        return removed
    }

    /// Moves the log start forward (Kafka's DeleteRecords); whole segments below it are deleted by the
    /// next retention pass.
    public func advanceLogStart(to offset: Int64) throws(StorageError) {
        try refuseIfDamaged()
        try state.withLock { state throws(StorageError) in
            guard offset <= logEndOffset else {
                throw StorageError(.offsetOutOfRange, path: directory, "log start \(offset) past the log end \(logEndOffset)")
            }
            state.logStartOffset = max(state.logStartOffset, offset)
            publishLogStart(state.logStartOffset)
            while state.segments.count > 1 && state.segments[1].baseOffset <= state.logStartOffset {
                state.pendingDeletion += try state.segments.removeFirst().markDeleted()
            }
        }
        deletePendingFiles()
    }
}
