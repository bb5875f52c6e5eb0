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

    final class Node {
        var children: [UInt8: Node] = [:]
        /// Subscribers whose topic ends here, with their count (always 1 in set mode).
        var subscribers: [Subscriber: Int] = [:]
        /// Subscriptions (topic × subscriber) in this node and below; prunes empty branches.
        var weight = 0
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
            if let next = node.children[octet] {
                node = next
            } else {
                let next = Node()
                node.children[octet] = next
                node = next
            }
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
            guard let next = node.children[octet] else { return Change(subscriberChanged: false, topicChanged: false) }
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
            nodes[index - 1].children[octets[index - 1]] = nil
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
            guard let next = node.children[octet] else { return false }
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
    func forEachMatch(_ message: some Collection<UInt8>, _ body: (Subscriber) -> Void) {
        var seen = Set<Subscriber>()
        var node = root
        var iterator = message.makeIterator()
        while true {
            for subscriber in node.subscribers.keys where seen.insert(subscriber).inserted { body(subscriber) }
            guard let octet = iterator.next(), let next = node.children[octet] else { return }
            node = next
        }
    }

    /// Nodes in the trie, the root included (memory use; tests check that cancels prune).
    var nodeCount: Int {
        func count(_ node: Node) -> Int { 1 + node.children.values.reduce(0) { $0 + count($1) } }
        return count(root)
    }

    /// Whether any subscription is a prefix of `message` (a subscriber filtering what it receives).
    func matches(_ message: some Collection<UInt8>) -> Bool {
        var node = root
        var iterator = message.makeIterator()
        while true {
            if !node.subscribers.isEmpty { return true }
            guard let octet = iterator.next(), let next = node.children[octet] else { return false }
            node = next
        }
    }
}
