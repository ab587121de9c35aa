import RESPClient

/// Checks and shows the `addresses` of a Redis engine.
enum RedisAddress {
    /// Why `address` is not a usable Redis URL, or `nil` when it is.
    static func problem(_ address: String) -> String? {
        do {
            _ = try RedisEndpoint(url: address)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The address without its password, for messages and logs.
    static func redacted(_ address: String) -> String {
        (try? RedisEndpoint(url: address))?.description ?? "the address"
    }
}
