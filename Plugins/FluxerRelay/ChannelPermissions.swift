/// What a connection may do with a channel, from its namespace's options and its token.
struct ChannelPermissions {
    let user: String
    let scopes: Set<String>
    /// Entries of the token's channels claim: exact names or prefixes ending in `*`.
    let channelGrants: [String]
    let publishScope: String

    /// Whether the connection may subscribe to `channel` (and read its presence and history).
    func maySubscribe(_ channel: String, name: ChannelName, options: NamespaceOptions) -> Bool {
        if let users = name.allowedUsers {
            // A user-limited channel is its users' only, whatever the namespace says.
            return !self.user.isEmpty && users.contains { $0 == self.user }
        }
        switch options.subscribe {
        case .any: return true
        case .authenticated: return !self.user.isEmpty
        case .claim: return self.isGranted(channel)
        case .none: return false
        }
    }

    /// Whether the connection may publish to `channel`; `subscribed` tells whether it is.
    func mayPublish(_ channel: String, name: ChannelName, options: NamespaceOptions, subscribed: Bool) -> Bool {
        switch options.publish {
        case .none: return false
        case .subscribers: return subscribed
        case .scope:
            return self.scopes.contains(self.publishScope) && self.maySubscribe(channel, name: name, options: options)
        case .any: return self.maySubscribe(channel, name: name, options: options)
        }
    }

    private func isGranted(_ channel: String) -> Bool {
        self.channelGrants.contains { grant in
            if grant.hasSuffix("*") { return channel.hasPrefix(grant.dropLast()) }
            return grant == channel
        }
    }
}
