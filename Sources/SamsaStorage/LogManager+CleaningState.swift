extension LogManager {
    /// A compacted partition's cleaning state, for tools (`samsa topics describe`): from this
    /// process's cleaner when it has cleaned or looked at the partition (the writer's, with the last
    /// clean's time), else from the directory itself: the clean point in `cleaner-offset-checkpoint`
    /// (the log start before a first clean) and Kafka's dirty ratio over the sealed segments' bytes,
    /// so a read-only open beside a writer or a broker shows it too. Nil for a log that is not compacted.
    public func cleaningState(_ partition: TopicPartition) -> PartitionCleaningState? {
        guard let log = log(partition), log.configuration.cleanupPolicy.compacts else { return nil }
        if let known = cleaner.statistics.partitions[partition] { return known }
        let points = (try? OffsetCheckpoint.read("\(directory)/\(LogCleaner.checkpointFile)", files: files)) ?? [:]
        let cleanPoint = max(points[partition] ?? 0, log.logStartOffset)
        let sealed = log.state.withLock { state in state.segments.dropLast().map { (next: $0.nextOffset, size: $0.size) } }
        var clean = 0, dirty = 0
        for segment in sealed {
            if segment.next <= cleanPoint { clean += segment.size } else { dirty += segment.size }
        }
        return PartitionCleaningState(dirtyRatio: clean + dirty == 0 ? 0 : Double(dirty) / Double(clean + dirty), cleanPoint: cleanPoint)
    }
}
