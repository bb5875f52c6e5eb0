/// Topic prefixes and who subscribed to them (libzmq's `mtrie` and `trie`), for matching messages
/// against subscriptions (RFC 29).
///
/// A message matches a subscription when the subscription's topic is a prefix of the message's first
/// frame; the empty topic matches everything. Matching walks the message's octets down the trie once,
/// so its cost grows with the topic length, not with the number of subscriptions.
///
/// Two ways to count, as in libzmq:
/// - ``Mode/set``: a subscriber is subscribed to a topic or not. Subscribing twice is one
///   subscription; one cancel ends it. Publishers keep their peers' subscriptions this way.
/// - ``Mode/counting``: each subscribe needs its own cancel. A subscriber keeps its own subscriptions
///   this way, and tells its publishers to cancel only when the last one goes.
///
/// Pure and single-threaded: the socket that owns it serializes access.
struct SubscriptionTrie<Subscriber: Hashable> {
    enum Mode { case set, counting }

    /// One octet of topic. Fields are `@exclusivity(unchecked)`: the owner serializes access, and
    /// the runtime's dynamic checks cost more than the walk itself.
    final class Node {
        /// Children as a range table, libzmq's layout: `table[i]` is the child for octet `low + i`.
        /// A lookup is a subtraction and an index, with no hashing.
        @exclusivity(unchecked) private var low: UInt8 = 0
        @exclusivity(unchecked) private var table: [Node?] = []
        @exclusivity(unchecked) private(set) var childCount = 0
        /// Subscribers whose topic ends here, with their count (always 1 in set mode).
        @exclusivity(unchecked) var subscribers: [Subscriber: Int] = [:]
        /// Subscriptions (topic × subscriber) in this node and below; prunes empty branches.
        @exclusivity(unchecked) var weight = 0

        @inline(__always)
        func child(_ octet: UInt8) -> Node? {
            let index = Int(octet) &- Int(low)
            guard index >= 0, index < table.count else { return nil }
            return table[index]
        }

        /// The child for `octet`, created if missing.
        func makeChild(_ octet: UInt8) -> Node {
            if let existing = child(octet) { return existing }
            let node = Node()
            if table.isEmpty {
                low = octet
                table = [node]
            } else if octet < low {
                table.insert(contentsOf: [Node?](repeating: nil, count: Int(low - octet)), at: 0)
                low = octet
                table[0] = node
            } else {
                let index = Int(octet - low)
                if index >= table.count { table.append(contentsOf: [Node?](repeating: nil, count: index - table.count + 1)) }
                table[index] = node
            }
            childCount += 1
            return node
        }

        /// Drops the child for `octet`; the table shrinks to the children that are left.
        func removeChild(_ octet: UInt8) {
            guard child(octet) != nil else { return }
            table[Int(octet - low)] = nil
            childCount -= 1
            guard let first = table.firstIndex(where: { $0 != nil }), let last = table.lastIndex(where: { $0 != nil }) else {
                table = []
                return
            }
            if first > 0 || last < table.count - 1 {
                table = Array(table[first...last])
                low += UInt8(first)
            }
        }

        /// Every child with its octet.
        var children: [(octet: UInt8, node: Node)] {
            table.indices.compactMap { index in table[index].map { (UInt8(Int(low) + index), $0) } }
        }
    }

    let mode: Mode
    private let root = Node()
    /// Distinct (topic, subscriber) pairs.
    private(set) var count = 0

    init(mode: Mode) { self.mode = mode }

    /// The outcome of adding or removing one subscription.
    struct Change: Equatable {
        /// The subscriber gained its first / lost its last subscription to this topic.
        var subscriberChanged: Bool
        /// The topic gained its first / lost its last subscriber.
        var topicChanged: Bool
    }

    /// Subscribes `subscriber` to `topic`.
    @discardableResult
    mutating func add(_ topic: some Collection<UInt8>, for subscriber: Subscriber) -> Change {
        var path: [Node] = [root]
        var node = root
        for octet in topic {
            node = node.makeChild(octet)
            path.append(node)
        }
        let topicWasEmpty = node.subscribers.isEmpty
        if let existing = node.subscribers[subscriber] {
            if mode == .counting { node.subscribers[subscriber] = existing + 1 }
            return Change(subscriberChanged: false, topicChanged: false)
        }
        node.subscribers[subscriber] = 1
        for visited in path { visited.weight += 1 }
        count += 1
        return Change(subscriberChanged: true, topicChanged: topicWasEmpty)
    }

    /// Cancels one subscription of `subscriber` to `topic` (all of it in set mode). Cancelling a
    /// subscription that does not exist changes nothing.
    @discardableResult
    mutating func remove(_ topic: some Collection<UInt8>, for subscriber: Subscriber) -> Change {
        var nodes: [Node] = [root]
        var octets: [UInt8] = []
        var node = root
        for octet in topic {
            guard let next = node.child(octet) else { return Change(subscriberChanged: false, topicChanged: false) }
            nodes.append(next)
            octets.append(octet)
            node = next
        }
        guard let existing = node.subscribers[subscriber] else {
            return Change(subscriberChanged: false, topicChanged: false)
        }
        if mode == .counting && existing > 1 {
            node.subscribers[subscriber] = existing - 1
            return Change(subscriberChanged: false, topicChanged: false)
        }
        node.subscribers[subscriber] = nil
        count -= 1
        for visited in nodes { visited.weight -= 1 }
        // Drop the branch below the deepest node that still holds a subscription.
        for index in stride(from: nodes.count - 1, to: 0, by: -1) where nodes[index].weight == 0 {
            nodes[index - 1].removeChild(octets[index - 1])
        }
        return Change(subscriberChanged: true, topicChanged: node.subscribers.isEmpty)
    }

    /// Removes every subscription of `subscriber` (its connection ended) and returns the topics that
    /// have no subscriber left, in no particular order.
    mutating func removeAll(for subscriber: Subscriber) -> [[UInt8]] {
        var orphaned: [[UInt8]] = []
        for topic in topics(of: subscriber) {
            // Set mode removes at once; counting mode may need several cancels.
            while true {
                let change = remove(topic, for: subscriber)
                if change.topicChanged { orphaned.append(topic) }
                if change.subscriberChanged || !contains(topic, for: subscriber) { break }
            }
        }
        return orphaned
    }

    /// Whether `subscriber` is subscribed to exactly `topic`.
    func contains(_ topic: some Collection<UInt8>, for subscriber: Subscriber) -> Bool {
        var node = root
        for octet in topic {
            guard let next = node.child(octet) else { return false }
            node = next
        }
        return node.subscribers[subscriber] != nil
    }

    /// Every topic `subscriber` is subscribed to.
    func topics(of subscriber: Subscriber) -> [[UInt8]] {
        topics { $0.subscribers[subscriber] != nil }
    }

    /// Every topic with at least one subscriber, each once.
    func allTopics() -> [[UInt8]] {
        topics { !$0.subscribers.isEmpty }
    }

    /// The topics (paths from the root) of the nodes `include` selects.
    private func topics(where include: (Node) -> Bool) -> [[UInt8]] {
        var found: [[UInt8]] = []
        var prefix: [UInt8] = []
        func visit(_ node: Node) {
            if include(node) { found.append(prefix) }
            for (octet, child) in node.children {
                prefix.append(octet)
                visit(child)
                prefix.removeLast()
            }
        }
        visit(root)
        return found
    }

    /// Calls `body` once for every subscriber with a subscription that is a prefix of `message`.
    ///
    /// Allocation-free when the subscriptions matching `message` all end at one node (the usual case:
    /// one topic per message); when several prefixes match, a set removes duplicates.
    func forEachMatch(_ message: [UInt8], _ body: (Subscriber) -> Void) {
        message.withUnsafeBytes { forEachMatch($0, body) }
    }

    /// ``forEachMatch(_:_:)`` over octets in place (a received message's first frame, with no copy).
    func forEachMatch(_ message: UnsafeRawBufferPointer, _ body: (Subscriber) -> Void) {
        // The walk holds no references: every node is owned by the trie, which outlives the call
        // (unowned(unsafe) spares a retain and a release per octet, most of the walk's cost).
        unowned(unsafe) var matched: Node? = nil
        unowned(unsafe) var node = root
        var index = 0
        while true {
            if !node.subscribers.isEmpty {
                if matched != nil { return forEachMatchDeduplicating(message, body) }
                matched = node
            }
            guard index < message.count, let next = node.child(message[index]) else { break }
            node = next
            index += 1
        }
        guard let matched else { return }
        for subscriber in matched.subscribers.keys { body(subscriber) }
    }

    private func forEachMatchDeduplicating(_ message: UnsafeRawBufferPointer, _ body: (Subscriber) -> Void) {
        var seen = Set<Subscriber>()
        var node = root
        var index = 0
        while true {
            for subscriber in node.subscribers.keys where seen.insert(subscriber).inserted { body(subscriber) }
            guard index < message.count, let next = node.child(message[index]) else { return }
            node = next
            index += 1
        }
    }

    /// Nodes in the trie, the root included (memory use; tests check that cancels prune).
    var nodeCount: Int {
        func count(_ node: Node) -> Int { 1 + node.children.reduce(0) { $0 + count($1.node) } }
        return count(root)
    }

    /// Whether any subscription is a prefix of `message` (a subscriber filtering what it receives).
    func matches(_ message: [UInt8]) -> Bool {
        message.withUnsafeBytes { matches($0) }
    }

    /// Whether the empty prefix is subscribed, so that every message matches (a subscriber or a
    /// proxy's XSUB that takes everything need not look at a message's topic).
    var matchesEverything: Bool { !root.subscribers.isEmpty }

    /// ``matches(_:)`` over octets in place.
    func matches(_ message: UnsafeRawBufferPointer) -> Bool {
        unowned(unsafe) var node = root  // see forEachMatch
        var index = 0
        while true {
            if !node.subscribers.isEmpty { return true }
            guard index < message.count, let next = node.child(message[index]) else { return false }
            node = next
            index += 1
        }
    }
}
