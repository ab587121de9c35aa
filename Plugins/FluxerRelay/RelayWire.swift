/// Result objects shared by the WebSocket and HTTP APIs, in the protocol's field names.
enum RelayWire {
    /// `{"presence":{client: info}}`, or `{"num_clients":…,"num_users":…}` for stats.
    static func presence(_ clients: [String: ClientInfo], stats: Bool) -> WireJSON {
        if stats {
            let users = Set(clients.values.map(\.user))
            return .object([
                "num_clients": .number(String(clients.count)),
                "num_users": .number(String(users.count)),
            ])
        }
        return .object(["presence": .object(clients.mapValues(\.wire))])
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
