/// Configuration of a `wasm` filter.
///
/// ```json
/// "rewrite": {
///   "plugin": "wasm",
///   "config": {
///     "module": "wasm/header-rewrite.wasm",
///     "guestConfig": "X-Wasm-Example: header-rewrite",
///     "limits": { "memoryPages": 16, "fuelPerRequest": 1000000, "wallTimeMilliseconds": 50 }
///   }
/// }
/// ```
public struct WasmFilterConfiguration: Decodable, Sendable {
    /// Path of the guest's `.wasm` file, relative to the configuration file's folder. Required.
    public var module: String
    /// The bytes the guest reads with `get_config` (UTF-8). Default empty.
    public var guestConfig: String
    /// What one guest instance may use. Defaults apply to each missing field.
    public var limits: WasmLimits

    enum CodingKeys: String, CodingKey { case module, guestConfig, limits }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.module = try container.decode(String.self, forKey: .module)
        self.guestConfig = try container.decodeIfPresent(String.self, forKey: .guestConfig) ?? ""
        self.limits = try container.decodeIfPresent(WasmLimits.self, forKey: .limits) ?? WasmLimits()
    }
}

/// Limits of a guest: what a request that exceeds them gets is a 500, never the gateway's harm.
public struct WasmLimits: Decodable, Sendable {
    /// The most 64 KiB pages of linear memory an instance may have, 1 to 65536. Default 256
    /// (16 MiB). Growing past it fails the request; a module that starts larger is a config error.
    public var memoryPages: Int
    /// Fuel (about one WebAssembly operator each) one request may burn across `handle_request`
    /// and `handle_response`, 1 to 10^9. Default 10,000,000. Bounds a guest that loops forever:
    /// guests run on the event loop, and a release build burns 10,000,000 fuel in about 10 ms
    /// (measured with the `misbehave` guest's `/loop`), so the cap of 10^9 holds a loop for about
    /// a second at most.
    public var fuelPerRequest: UInt64
    /// Wall time one request may spend in the guest, in milliseconds, 1 to 60000. Default 100.
    /// Checked at every host call and when the guest returns (the fuel budget is what stops a
    /// loop that calls nothing).
    public var wallTimeMilliseconds: Int64
    /// The most response body bytes held for a guest that enables `buffer_response`, 0 to
    /// 1 GiB. Default 1 MiB. A larger response is answered with a 502.
    public var maxBufferedBodyBytes: Int
    /// The most request body bytes held for a guest that enables `buffer_request`, 0 to 1 GiB.
    /// Default 1 MiB. A larger body is answered with a 413 (at once when its `Content-Length`
    /// says so) and the connection closes.
    public var maxBufferedRequestBodyBytes: Int
    /// The most idle instances kept per event loop, 0 to 1024. Default 8.
    public var idleInstancesPerLoop: Int

    enum CodingKeys: String, CodingKey {
        case memoryPages, fuelPerRequest, wallTimeMilliseconds, maxBufferedBodyBytes, maxBufferedRequestBodyBytes
        case idleInstancesPerLoop
    }

    public init() {
        self.memoryPages = 256
        self.fuelPerRequest = 10_000_000
        self.wallTimeMilliseconds = 100
        self.maxBufferedBodyBytes = 1 << 20
        self.maxBufferedRequestBodyBytes = 1 << 20
        self.idleInstancesPerLoop = 8
    }

    public init(from decoder: any Decoder) throws {
        let defaults = WasmLimits()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func check<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ key: CodingKeys) throws -> T {
            guard range.contains(value) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key,
                    in: container,
                    debugDescription:
                        "expected a number from \(range.lowerBound) to \(range.upperBound), found \(value)"
                )
            }
            return value
        }
        self.memoryPages = try check(
            container.decodeIfPresent(Int.self, forKey: .memoryPages) ?? defaults.memoryPages,
            1...65536,
            .memoryPages
        )
        self.fuelPerRequest = try check(
            container.decodeIfPresent(UInt64.self, forKey: .fuelPerRequest) ?? defaults.fuelPerRequest,
            1...1_000_000_000,
            .fuelPerRequest
        )
        self.wallTimeMilliseconds = try check(
            container.decodeIfPresent(Int64.self, forKey: .wallTimeMilliseconds) ?? defaults.wallTimeMilliseconds,
            1...60000,
            .wallTimeMilliseconds
        )
        self.maxBufferedBodyBytes = try check(
            container.decodeIfPresent(Int.self, forKey: .maxBufferedBodyBytes) ?? defaults.maxBufferedBodyBytes,
            0...(1 << 30),
            .maxBufferedBodyBytes
        )
        self.maxBufferedRequestBodyBytes = try check(
            container.decodeIfPresent(Int.self, forKey: .maxBufferedRequestBodyBytes)
                ?? defaults.maxBufferedRequestBodyBytes,
            0...(1 << 30),
            .maxBufferedRequestBodyBytes
        )
        self.idleInstancesPerLoop = try check(
            container.decodeIfPresent(Int.self, forKey: .idleInstancesPerLoop) ?? defaults.idleInstancesPerLoop,
            0...1024,
            .idleInstancesPerLoop
        )
    }
}
