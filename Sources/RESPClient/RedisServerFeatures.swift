/// What a server can do, read from the version it reports (`HELLO`'s `version`, or `INFO`).
/// One rule for every part that must agree: the subscriber that listens and the code that
/// publishes must pick the same kind of pub/sub.
public enum RedisServerFeatures {
    /// Whether a server of `version` (e.g. `"7.0.15"`) has sharded pub/sub (`SSUBSCRIBE`,
    /// `SPUBLISH`): Redis 7 and later.
    public static func hasShardedPubSub(version: String?) -> Bool {
        guard let major = version?.split(separator: ".").first.flatMap({ Int($0) }) else { return false }
        return major >= 7
    }
}
