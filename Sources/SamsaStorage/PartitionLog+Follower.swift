public import SamsaRecords

extension PartitionLog {
    /// Appends a batch a leader's log holds, at the leader's offsets (Kafka's `appendAsFollower`,
    /// offsets not assigned): a compacted leader's log has gaps, and its follower keeps them, so its
    /// batches are byte for byte the leader's (base offset and leader epoch as the leader wrote them).
    ///
    /// - `batch.baseOffset` must be at or past the log end (else `.invalidArgument`: this log holds
    ///   those offsets already, or diverged; the follower truncates first). Offsets between the log
    ///   end and the batch stay empty, as on the leader; reads from inside the gap return the next
    ///   batch, and a truncation into it cuts back to the batch before.
    /// - The log end becomes `batch.nextOffset`. Segments roll as for `append` (size, age, a full
    ///   index, at the log end) and also when the batch's offsets do not fit the active segment's
    ///   32-bit relative offsets: then at the log end if they fit a segment based there, else at the
    ///   batch's base offset, leaving a gap between two segments that recovery accepts (`SegmentGap`).
    /// - Flush policy, group commit and recovery points as for `appendWithoutWaiting`: returns once
    ///   written; `waitForFlushPolicy` / `whenFlushPolicySatisfied` wait for the policy.
    @discardableResult
    public func appendAsFollower(_ batch: RecordBatch) throws(StorageError) -> AppendResult {
        try write(batch, at: .ownOffsets)
    }
}
