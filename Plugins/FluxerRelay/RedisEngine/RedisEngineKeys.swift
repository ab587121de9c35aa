/// The names of everything the Redis engine keeps, under its configured prefix.
///
/// A channel's keys share the hash tag `{channel}`, so a Redis Cluster would keep them in one
/// slot as the scripts need; the engine itself spreads channels over independent shards.
struct RedisEngineKeys: Sendable {
    let prefix: String

    /// Hash of the channel's stream position: `s` the last offset, `e` the epoch.
    func meta(_ channel: String) -> String { "\(self.prefix):meta:{\(channel)}" }
    /// Stream of the channel's publications (entry ids `<offset>-1`, field `d`).
    func history(_ channel: String) -> String { "\(self.prefix):history:{\(channel)}" }
    /// The first result of a publish with an idempotency key.
    func idempotency(_ channel: String, key: String) -> String { "\(self.prefix):idempotency:{\(channel)}:\(key)" }
    /// Hash of presence entries: client id to `user \n info JSON`.
    func presenceData(_ channel: String) -> String { "\(self.prefix):presence:data:{\(channel)}" }
    /// Sorted set of presence entries by expiry (Unix seconds).
    func presenceExpiry(_ channel: String) -> String { "\(self.prefix):presence:expiry:{\(channel)}" }
    /// Hash of users in presence: user to their number of clients.
    func presenceUsers(_ channel: String) -> String { "\(self.prefix):presence:users:{\(channel)}" }
    /// The pub/sub channel carrying the channel's publications, joins and leaves.
    func pubSub(_ channel: String) -> String { "\(self.prefix):channel:\(channel)" }
    /// The prefix of ``pubSub(_:)`` names, to find the channel of a message.
    var pubSubPrefix: String { "\(self.prefix):channel:" }
    /// Hash of the namespaces shared by every node: `v` version, `doc` JSON document.
    var namespaces: String { "\(self.prefix):namespaces" }
    /// The pub/sub channel announcing a new namespaces version.
    var namespacesChanged: String { "\(self.prefix):namespaces-changed" }
}
