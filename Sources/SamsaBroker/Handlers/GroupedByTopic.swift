/// Per-partition results under their topics, topics in the order first seen (how Kafka's responses
/// list them): `make` starts a topic's entry, `add` puts an item in it.
func groupedByTopic<Item, Entry>(_ items: [Item], topic: (Item) -> String, make: (String) -> Entry, add: (inout Entry, Item) -> Void) -> [Entry] {
    var entries: [Entry] = []
    var index: [String: Int] = [:]
    for item in items {
        let name = topic(item)
        if index[name] == nil {
            index[name] = entries.count
            entries.append(make(name))
        }
        add(&entries[index[name]!], item)
    }
    return entries
}
