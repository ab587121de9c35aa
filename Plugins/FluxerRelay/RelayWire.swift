/// Result objects shared by the WebSocket and HTTP APIs, in the protocol's field names.
enum RelayWire {
    /// `{"presence":{client: info}}`.
    static func presence(_ clients: [String: ClientInfo]) -> WireJSON {
        .object(["presence": .object(clients.mapValues(\.wire))])
    }

    /// `{"num_clients":…,"num_users":…}`.
    static func presenceStats(_ stats: PresenceStats) -> WireJSON {
        .object(["num_clients": .number(String(stats.clients)), "num_users": .number(String(stats.users))])
    }

    /// `{"publications":[…],"epoch":…,"offset":…}`.
    static func history(_ page: HistoryPage) -> WireJSON {
        .object([
            "publications": .array(page.publications.map(\.wire)),
            "epoch": .string(page.position.epoch),
            "offset": .number(String(page.position.offset)),
        ])
    }
}
