extension RecordBatch {
    /// Checks every record as `forEachRecord` does (lengths, fields, offset deltas, the count the
    /// header gives) without handing any out, and returns the count: for a broker that checks batches
    /// before writing them. One parse state for the whole walk, no view per record.
    public func checkRecords(limits: RecordBatchLimits = .default) throws(RecordBatchError) -> Int32 {
        let section = try recordsSection(limits: limits)
        var sequence = RecordSequenceCheck(batch: self)
        return try section.withUnsafeReadableBytes { raw throws(RecordBatchError) in
            var cursor = ByteCursor(raw)
            var record = ParsedRecord()
            var count: Int32 = 0
            while try sequence.expectsAnother(at: cursor.position, available: raw.count) {
                let start = cursor.position
                if !record.headers.isEmpty { record.headers.removeAll(keepingCapacity: true) }
                try parseRecord(&cursor, into: &record, section: section)
                _ = try sequence.accept(record, at: start)
                cursor.position = record.end
                cursor.end = raw.count
                count += 1
            }
            return count
        }
    }
}
