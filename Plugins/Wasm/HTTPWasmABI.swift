/// Names and numbers of the http-wasm handler ABI (<https://http-wasm.io/http-handler-abi/>).
///
/// The guest imports its host functions from the module ``moduleName`` and exports
/// `handle_request`, `handle_response` and its `memory`.
enum HTTPWasmABI {
    /// The module the guest imports host functions from.
    static let moduleName = "http_handler"
    /// The guest's export called for each request: `() -> i64`, `ctx << 32 | next`.
    static let handleRequest = "handle_request"
    /// The guest's export called after the next handler when `next` was 1: `(ctx: i32, is_error: i32)`.
    static let handleResponse = "handle_response"
    /// The guest's linear memory export.
    static let memory = "memory"
    /// A reactor's initializer, run once per instance before the first request (as wazero does).
    static let initialize = "_initialize"
    /// A command's entry point, run once per instance when there is no `_initialize`.
    static let start = "_start"
}

/// Which headers a header function works on (`kind` parameter).
enum HeaderKind: UInt32 {
    case request = 0
    case response = 1
    case requestTrailers = 2
    case responseTrailers = 3
}

/// Which body a body function works on (`kind` parameter).
enum BodyKind: UInt32 {
    case request = 0
    case response = 1
}

/// The features a guest asks for with `enable_features`.
struct HTTPWasmFeatures: OptionSet, Sendable {
    let rawValue: UInt32
    /// Hold the request body so `handle_request` can read and replace it (and `handle_response`
    /// read it again). Granted when enabled while the instance initializes: the gateway must
    /// know before `handle_request` that it has to read the body first.
    static let bufferRequest = HTTPWasmFeatures(rawValue: 1 << 0)
    /// Hold the response so `handle_response` can read and rewrite its body.
    static let bufferResponse = HTTPWasmFeatures(rawValue: 1 << 1)
    /// Trailer access (header kinds 2 and 3).
    static let trailers = HTTPWasmFeatures(rawValue: 1 << 2)
    /// What this host grants (see docs/wasm-plugins.md for when, and what happens to trailers).
    static let supported: HTTPWasmFeatures = [.bufferRequest, .bufferResponse, .trailers]
}
