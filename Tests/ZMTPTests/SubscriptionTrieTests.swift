import Testing
import ZMTPFuzzing
@testable import ZMTP

@Suite("subscription trie")
struct SubscriptionTrieTests {
    func matches(_ trie: SubscriptionTrie<Int>, _ message: String) -> Set<Int> {
        var found: [Int] = []
        trie.forEachMatch(Array(message.utf8)) { found.append($0) }
        #expect(found.count == Set(found).count, "each subscriber reported once")
        return Set(found)
    }

    @Test("a topic matches every message it is a prefix of; the empty topic matches everything")
    func prefixMatching() {
        var trie = SubscriptionTrie<Int>(mode: .set)
        trie.add(Array("zeek.cluster.".utf8), for: 1)
        trie.add(Array("zeek.".utf8), for: 1)
        trie.add(Array("zeek.logging".utf8), for: 2)
        trie.add([], for: 3)
        #expect(matches(trie, "zeek.cluster.node.worker-1.") == [1, 3])
        #expect(matches(trie, "zeek.logging.conn") == [1, 2, 3])
        #expect(matches(trie, "zeek") == [3], "a subscription longer than the message does not match")
        #expect(matches(trie, "") == [3])
        #expect(trie.matches(Array("zeek.x".utf8)))
        #expect(trie.count == 4)
    }

    @Test("set mode: a repeated subscribe is one subscription, one cancel ends it, and the flags say when a topic appears and goes")
    func setMode() {
        var trie = SubscriptionTrie<Int>(mode: .set)
        #expect(trie.add(Array("a".utf8), for: 1) == .init(subscriberChanged: true, topicChanged: true))
        #expect(trie.add(Array("a".utf8), for: 1) == .init(subscriberChanged: false, topicChanged: false))
        #expect(trie.add(Array("a".utf8), for: 2) == .init(subscriberChanged: true, topicChanged: false))
        #expect(trie.remove(Array("a".utf8), for: 1) == .init(subscriberChanged: true, topicChanged: false))
        #expect(trie.remove(Array("a".utf8), for: 1) == .init(subscriberChanged: false, topicChanged: false), "already gone")
        #expect(trie.remove(Array("a".utf8), for: 2) == .init(subscriberChanged: true, topicChanged: true))
        #expect(trie.count == 0 && trie.allTopics().isEmpty && trie.nodeCount == 1)
        #expect(trie.remove(Array("never".utf8), for: 9) == .init(subscriberChanged: false, topicChanged: false))
    }

    @Test("counting mode: each subscribe needs its own cancel")
    func countingMode() {
        var trie = SubscriptionTrie<Int>(mode: .counting)
        trie.add(Array("t".utf8), for: 0)
        trie.add(Array("t".utf8), for: 0)
        #expect(trie.remove(Array("t".utf8), for: 0).subscriberChanged == false)
        #expect(trie.matches(Array("t1".utf8)))
        #expect(trie.remove(Array("t".utf8), for: 0) == .init(subscriberChanged: true, topicChanged: true))
        #expect(!trie.matches(Array("t1".utf8)))
    }

    @Test("removing a subscriber returns exactly the topics nobody else holds")
    func removeAllForSubscriber() {
        var trie = SubscriptionTrie<Int>(mode: .set)
        for topic in ["a", "ab", "b", ""] { trie.add(Array(topic.utf8), for: 1) }
        trie.add(Array("ab".utf8), for: 2)
        let orphaned = Set(trie.removeAll(for: 1).map { String(decoding: $0, as: UTF8.self) })
        #expect(orphaned == ["a", "b", ""])
        #expect(Set(trie.allTopics()) == [Array("ab".utf8)])
        #expect(matches(trie, "abc") == [2])
    }

    @Test("random subscribe/cancel sequences match a naive model, and emptying it prunes every node")
    func againstModel() {
        var generator = SplitMix64(seed: 29)
        for mode in [SubscriptionTrie<Int>.Mode.set, .counting] {
            var trie = SubscriptionTrie<Int>(mode: mode)
            var model: [[UInt8]: [Int: Int]] = [:]
            let alphabet: [UInt8] = [0, 1, 0x61, 0xFF]
            func randomTopic() -> [UInt8] { (0..<Int(generator.next() % 4)).map { _ in alphabet[Int(generator.next() % 4)] } }
            for _ in 0..<5_000 {
                let topic = randomTopic()
                let subscriber = Int(generator.next() % 5)
                if generator.next() % 3 != 0 {
                    trie.add(topic, for: subscriber)
                    let current = model[topic, default: [:]][subscriber, default: 0]
                    model[topic, default: [:]][subscriber] = mode == .set ? 1 : current + 1
                } else {
                    trie.remove(topic, for: subscriber)
                    if let current = model[topic]?[subscriber] {
                        model[topic]?[subscriber] = (mode == .set || current == 1) ? nil : current - 1
                        if model[topic]?.isEmpty == true { model[topic] = nil }
                    }
                }
                let message = randomTopic() + randomTopic()
                var expected = Set<Int>()
                for (prefix, subscribers) in model where message.starts(with: prefix) { expected.formUnion(subscribers.keys) }
                var found = Set<Int>()
                trie.forEachMatch(message) { found.insert($0) }
                #expect(found == expected)
                if found != expected { return }
            }
            #expect(trie.count == model.values.reduce(0) { $0 + $1.count })
            for subscriber in 0..<5 { _ = trie.removeAll(for: subscriber) }
            #expect(trie.count == 0 && trie.allTopics().isEmpty)
            #expect(trie.nodeCount == 1, "only the root is left")
        }
    }
}
