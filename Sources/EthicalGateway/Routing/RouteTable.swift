public import NIOHTTP1

/// The compiled routing table. Built once per configuration; matching walks a host map and a
/// path-segment trie, so its cost depends on the path's depth, not on how many routes exist.
///
/// Precedence, most specific first: exact host, then `*.` wildcard host, then routes without a
/// host; within a host, an exact path, then the longest matching prefix; then routes with a
/// method list, then those with more header conditions. If a more specific host has no route for
/// the path, the less specific hosts are tried. Two routes that could take the same request with
/// equal precedence are a configuration error (see ``build(_:)``).
public struct RouteTable<Target: Sendable>: Sendable {
    /// A successful match.
    public struct Match: Sendable {
        public var entry: RouteEntry<Target>
        /// The part of the path the route's prefix matched (empty for the `/` prefix); for an
        /// exact route, the whole path.
        public var matchedPrefix: Substring
    }

    private var exactHosts: [String: PathTable] = [:]
    private var wildcardHosts: [String: PathTable] = [:]
    private var anyHost = PathTable()
    /// Every route, in configuration order.
    public private(set) var entries: [RouteEntry<Target>] = []

    /// Compiles `entries`, or throws ``ConfigValidationError`` listing every tie.
    public static func build(_ entries: [RouteEntry<Target>]) throws -> RouteTable {
        var table = RouteTable()
        table.entries = entries
        for entry in entries {
            if entry.hosts.isEmpty {
                table.anyHost.insert(entry)
            }
            for host in Set(entry.hosts) {
                switch host {
                case .exact(let name): table.exactHosts[name, default: PathTable()].insert(entry)
                case .wildcard(let suffix): table.wildcardHosts[suffix, default: PathTable()].insert(entry)
                }
            }
        }
        var issues: [ConfigIssue] = []
        table.anyHost.finish(host: "any host", issues: &issues)
        for (name, var paths) in table.exactHosts {
            paths.finish(host: "host \(name)", issues: &issues)
            table.exactHosts[name] = paths
        }
        for (suffix, var paths) in table.wildcardHosts {
            paths.finish(host: "host *.\(suffix)", issues: &issues)
            table.wildcardHosts[suffix] = paths
        }
        if !issues.isEmpty {
            throw ConfigValidationError(issues.sorted { $0.path < $1.path })
        }
        return table
    }

    /// The route for a request, or `nil` (the gateway answers 404).
    ///
    /// - Parameters:
    ///   - host: lower-cased host without port, `nil` when the request named none.
    ///   - path: the normalized path, without the query.
    public func match(host: String?, path: Substring, method: HTTPMethod, headers: HTTPHeaders) -> Match? {
        if let host {
            if let table = self.exactHosts[host], let found = table.match(path: path, method: method, headers: headers)
            {
                return found
            }
            if !self.wildcardHosts.isEmpty, let suffix = wildcardSuffix(of: host),
                let table = self.wildcardHosts[String(suffix)],
                let found = table.match(path: path, method: method, headers: headers)
            {
                return found
            }
        }
        return self.anyHost.match(path: path, method: method, headers: headers)
    }

    /// Routes of one host bucket, by path.
    private struct PathTable: Sendable {
        var exactPaths: [Substring: [RouteEntry<Target>]] = [:]
        var prefixRoot = PrefixNode()

        mutating func insert(_ entry: RouteEntry<Target>) {
            switch entry.path {
            case .exact(let path):
                self.exactPaths[Substring(path), default: []].append(entry)
            case .prefix(let prefix):
                self.prefixRoot.insert(
                    entry,
                    segments: prefix.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
                )
            }
        }

        mutating func finish(host: String, issues: inout [ConfigIssue]) {
            for (path, entries) in self.exactPaths {
                self.exactPaths[path] = RouteTable.ordered(entries, where: "\(host), path \(path)", issues: &issues)
            }
            self.prefixRoot.finish(host: host, issues: &issues)
        }

        func match(path: Substring, method: HTTPMethod, headers: HTTPHeaders) -> Match? {
            if let entries = self.exactPaths[path] {
                for entry in entries where entry.accepts(method: method, headers: headers) {
                    return Match(entry: entry, matchedPrefix: path)
                }
            }
            return Self.longestPrefixMatch(
                self.prefixRoot,
                prefixEnd: path.startIndex,
                nextSegment: path.index(after: path.startIndex),
                path: path,
                method: method,
                headers: headers
            )
        }

        /// Walks the trie along the path's segments below `node` (whose prefix ends at
        /// `prefixEnd`; `nextSegment` is where the path's next segment starts, `nil` past the
        /// last one) and answers with the deepest node's route that accepts the request, the
        /// longest prefix first. Recursion instead of a list of candidate nodes: no allocation
        /// per request (the depth is the path's number of segments).
        private static func longestPrefixMatch(
            _ node: PrefixNode,
            prefixEnd: Substring.Index,
            nextSegment: Substring.Index?,
            path: Substring,
            method: HTTPMethod,
            headers: HTTPHeaders
        ) -> Match? {
            if let position = nextSegment, !node.children.isEmpty {
                let segmentEnd = path[position...].firstIndex(of: "/") ?? path.endIndex
                if let child = node.children[path[position..<segmentEnd]],
                    let deeper = Self.longestPrefixMatch(
                        child,
                        prefixEnd: segmentEnd,
                        nextSegment: segmentEnd < path.endIndex ? path.index(after: segmentEnd) : nil,
                        path: path,
                        method: method,
                        headers: headers
                    )
                {
                    return deeper
                }
            }
            for entry in node.entries where entry.accepts(method: method, headers: headers) {
                return Match(entry: entry, matchedPrefix: path[..<prefixEnd])
            }
            return nil
        }
    }

    /// A node of the path-segment trie; `entries` are the routes whose prefix ends here.
    private struct PrefixNode: Sendable {
        var entries: [RouteEntry<Target>] = []
        var children: [Substring: PrefixNode] = [:]

        mutating func insert(_ entry: RouteEntry<Target>, segments: ArraySlice<Substring>) {
            guard let first = segments.first else {
                self.entries.append(entry)
                return
            }
            self.children[first, default: PrefixNode()].insert(entry, segments: segments.dropFirst())
        }

        mutating func finish(host: String, issues: inout [ConfigIssue]) {
            if let prefix = self.entries.first.map({ "\($0.path)" }) {
                self.entries = RouteTable.ordered(self.entries, where: "\(host), \(prefix)", issues: &issues)
            }
            for key in self.children.keys {
                self.children[key]!.finish(host: host, issues: &issues)
            }
        }
    }

    /// Sorts the routes of one (host, path) bucket by precedence and reports ties.
    private static func ordered(
        _ entries: [RouteEntry<Target>],
        where location: String,
        issues: inout [ConfigIssue]
    ) -> [RouteEntry<Target>] {
        for (offset, first) in entries.enumerated() {
            for second in entries[(offset + 1)...] where Self.tie(first, second) {
                issues.append(
                    ConfigIssue(
                        path: second.jsonPath,
                        message:
                            "route \"\(second.name)\" ties with route \"\(first.name)\" (\(first.jsonPath)) for \(location): "
                            + "both can take the same request with equal precedence; give one of them methods or headers "
                            + "that set them apart"
                    )
                )
            }
        }
        // A stable sort, so configuration order is kept among routes that cannot tie.
        return entries.enumerated().sorted { lhs, rhs in
            if RouteEntry.precedes(lhs.element, rhs.element) { return true }
            if RouteEntry.precedes(rhs.element, lhs.element) { return false }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }

    /// Two routes in one bucket tie when neither precedes the other and one request can satisfy both.
    private static func tie(_ lhs: RouteEntry<Target>, _ rhs: RouteEntry<Target>) -> Bool {
        guard !RouteEntry.precedes(lhs, rhs), !RouteEntry.precedes(rhs, lhs) else { return false }
        if let left = lhs.methods, let right = rhs.methods, left.isDisjoint(with: right) {
            return false
        }
        for condition in lhs.headers {
            if let other = rhs.headers.first(where: { $0.name == condition.name }), other.value != condition.value {
                return false
            }
        }
        return true
    }
}
