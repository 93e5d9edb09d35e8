import Glibc

/// Every partition keeps its active segment open (about one descriptor each), so a directory with
/// more partitions than the process may open files cannot work: refuse it up front, with the number
/// to raise, instead of failing half-way with EMFILE (or, after a registry was saved, at every open).
enum DescriptorBudget {
    /// Descriptors left for everything else (standard streams, lock, checkpoints, sockets, sealed segments).
    static let reserve = 64

    static func check(partitions: Int, directory: String) throws(SamsaError) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        // RLIM_INFINITY is all ones.
        let available = limit.rlim_cur > UInt(Int.max) ? Int.max : Int(limit.rlim_cur)
        guard partitions + reserve > available else { return }
        throw SamsaError(
            .invalidArgument,
            "\(directory): \(partitions) partitions need about \(partitions + reserve) open files, but this process may open \(available) (raise `ulimit -n`, or use fewer partitions)"
        )
    }
}
