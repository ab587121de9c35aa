import NIOHTTP1

/// ``HeaderRules`` ready to apply: names lower-cased, `set` and `add` as lists.
struct HeaderRewriter: Sendable {
    private let set: [(String, String)]
    private let add: [(String, String)]
    private let remove: [String]

    init(_ rules: HeaderRules) {
        self.set = rules.set.sorted { $0.key < $1.key }.map { ($0.key.lowercased(), $0.value) }
        self.add = rules.add.sorted { $0.key < $1.key }.map { ($0.key.lowercased(), $0.value) }
        self.remove = rules.remove.map { $0.lowercased() }
    }

    var isEmpty: Bool { self.set.isEmpty && self.add.isEmpty && self.remove.isEmpty }

    func apply(to headers: inout HTTPHeaders) {
        for (name, value) in self.set { headers.replaceOrAdd(name: name, value: value) }
        for (name, value) in self.add { headers.add(name: name, value: value) }
        for name in self.remove { headers.remove(name: name) }
    }
}
