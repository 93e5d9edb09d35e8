/// The names in a data directory's `groups/` that the embedded queue and the broker share: a group's
/// lock, its staged commits (a process consuming beside the directory's writer cannot append to
/// `__consumer_offsets`, so it stages its group's whole map here), the same file once folded into
/// `__consumer_offsets`, and the lock a broker holds exclusively while it serves the groups.
public enum GroupsDirectory {
    public static let name = "groups"
    public static let servedLock = "served.lock"
    public static let stagedSuffix = ".offsets"
    public static let foldedSuffix = ".offsets.folded"
    public static let lockSuffix = ".lock"
}
