/// A channel name split the way the relay reads it: `chat:room-1#alice,bob` is channel
/// `room-1` of namespace `chat`, limited to users `alice` and `bob`.
struct ChannelName: Sendable {
    /// The namespace (`default` for names without `:`).
    let namespace: String
    /// Users a user-limited channel (`…#user1,user2`) is for; `nil` for other channels.
    let allowedUsers: [Substring]?

    static let maxBytes = 255

    /// `nil` when the name is empty, too long or has control characters.
    init?(_ name: String) {
        guard !name.isEmpty, name.utf8.count <= Self.maxBytes, name.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F })
        else { return nil }
        if let colon = name.firstIndex(of: ":") {
            self.namespace = String(name[..<colon])
        } else {
            self.namespace = "default"
        }
        if let hash = name.lastIndex(of: "#") {
            self.allowedUsers = name[name.index(after: hash)...].split(separator: ",")
        } else {
            self.allowedUsers = nil
        }
    }
}
