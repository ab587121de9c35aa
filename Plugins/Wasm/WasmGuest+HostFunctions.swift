import EthicalGateway
import Logging
import NIOCore
import NIOHTTP1
import WasmKit

// MARK: The host side of the http-wasm handler ABI (module "http_handler")

extension WasmGuest {
    /// A host function body: the guest, its parameters, where its results go.
    typealias HostBody = @Sendable (WasmGuest, HostParameters, UnsafeMutableBufferPointer<Value>) throws -> Void

    /// Every function of the ABI, bound to this instance.
    func hostImports() -> Imports {
        var imports = Imports()
        for (name, parameters, results, body) in Self.hostFunctions {
            let function = Function(
                store: self.store,
                parameters: parameters,
                results: results,
                raw: { [unowned self] _, arguments, out in
                    // Every host call is where the wall-time limit can stop a guest.
                    if let exchange = self.exchange { try self.checkWallTime(exchange) }
                    try body(self, HostParameters(values: arguments), out)
                }
            )
            imports.define(module: HTTPWasmABI.moduleName, name: name, function)
        }
        return imports
    }

    /// The request being served, or a failure when the guest calls a request function outside one.
    func currentExchange(_ function: String) throws -> WasmExchange {
        guard let exchange = self.exchange else {
            throw WasmGuestError.abi("\(function) was called outside a request (while the instance initialized)")
        }
        return exchange
    }

    /// The ABI's functions: name, parameter and result types, body.
    static let hostFunctions: [(String, [ValueType], [ValueType], HostBody)] = [
        (
            "log", [.i32, .i32, .i32], [],
            { guest, p, _ in
                guard let level = WasmGuest.logLevel(p.i32(0)), guest.logger.logLevel <= level else { return }
                let message = try guest.readString(p.u32(1), p.u32(2))
                guest.logger.log(level: level, "\(message)", metadata: ["wasm-guest": "\(guest.module.name)"])
            }
        ),
        (
            "log_enabled", [.i32], [.i32],
            { guest, p, out in
                let enabled = WasmGuest.logLevel(p.i32(0)).map { guest.logger.logLevel <= $0 } ?? false
                out[0] = .i32(enabled ? 1 : 0)
            }
        ),
        (
            "get_config", [.i32, .i32], [.i32],
            { guest, p, out in
                out[0] = .i32(try guest.write(guest.module.guestConfig, to: p.u32(0), limit: p.u32(1)))
            }
        ),
        (
            "enable_features", [.i32], [.i32],
            { guest, p, out in
                var granted = HTTPWasmFeatures(rawValue: p.u32(0)).intersection(.supported)
                if let exchange = guest.exchange {
                    // Too late to hold a body that is streaming to the backend.
                    if exchange.request.heldBody == nil { granted.remove(.bufferRequest) }
                    exchange.features.formUnion(granted)
                    out[0] = .i32(exchange.features.rawValue)
                } else {
                    guest.features.formUnion(granted)
                    out[0] = .i32(guest.features.rawValue)
                }
            }
        ),
        (
            "get_method", [.i32, .i32], [.i32],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_method")
                out[0] = .i32(
                    try guest.write(exchange.request.head.method.rawValue.utf8, to: p.u32(0), limit: p.u32(1))
                )
            }
        ),
        (
            "set_method", [.i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("set_method")
                try exchange.requirePhase(.request, "set_method")
                let method = try guest.readString(p.u32(0), p.u32(1))
                guard HTTPToken.isToken(method) else {
                    throw WasmGuestError.abi("set_method: \"\(method.prefix(64))\" is not a method token")
                }
                exchange.request.head.method = HTTPMethod(rawValue: method)
            }
        ),
        (
            "get_uri", [.i32, .i32], [.i32],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_uri")
                out[0] = .i32(try guest.write(exchange.request.head.uri.utf8, to: p.u32(0), limit: p.u32(1)))
            }
        ),
        (
            "set_uri", [.i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("set_uri")
                try exchange.requirePhase(.request, "set_uri")
                try exchange.setURI(try guest.readString(p.u32(0), p.u32(1)))
            }
        ),
        (
            "get_protocol_version", [.i32, .i32], [.i32],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_protocol_version")
                let version = exchange.request.head.version
                let text = version.major == 2 ? "HTTP/2.0" : "HTTP/\(version.major).\(version.minor)"
                out[0] = .i32(try guest.write(text.utf8, to: p.u32(0), limit: p.u32(1)))
            }
        ),
        (
            "get_header_names", [.i32, .i32, .i32], [.i64],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_header_names")
                let headers = try exchange.headers(try WasmGuest.headerKind(p.u32(0)))
                var seen = Set<String>()
                var names: [String] = []
                for (name, _) in headers where seen.insert(name.lowercased()).inserted { names.append(name) }
                out[0] = .i64(try guest.writeNULTerminated(names, to: p.u32(1), limit: p.u32(2)))
            }
        ),
        (
            "get_header_values", [.i32, .i32, .i32, .i32, .i32], [.i64],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_header_values")
                let headers = try exchange.headers(try WasmGuest.headerKind(p.u32(0)))
                let name = try guest.readString(p.u32(1), p.u32(2))
                out[0] = .i64(try guest.writeNULTerminated(headers[name], to: p.u32(3), limit: p.u32(4)))
            }
        ),
        (
            "set_header_value", [.i32, .i32, .i32, .i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("set_header_value")
                let (name, value) = try guest.readHeaderField(p)
                try exchange.changeHeaders(try WasmGuest.headerKind(p.u32(0))) {
                    $0.replaceOrAdd(name: name, value: value)
                }
            }
        ),
        (
            "add_header_value", [.i32, .i32, .i32, .i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("add_header_value")
                let (name, value) = try guest.readHeaderField(p)
                try exchange.changeHeaders(try WasmGuest.headerKind(p.u32(0))) { $0.add(name: name, value: value) }
            }
        ),
        (
            "remove_header", [.i32, .i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("remove_header")
                let name = try guest.readString(p.u32(1), p.u32(2))
                try exchange.changeHeaders(try WasmGuest.headerKind(p.u32(0))) { $0.remove(name: name) }
            }
        ),
        (
            "read_body", [.i32, .i32, .i32], [.i64],
            { guest, p, out in
                let exchange = try guest.currentExchange("read_body")
                guard p.u32(2) > 0 else { throw WasmGuestError.abi("read_body with a zero buf_limit") }
                out[0] = .i64(
                    try exchange.readBody(try WasmGuest.bodyKind(p.u32(0)), into: guest, at: p.u32(1), limit: p.u32(2))
                )
            }
        ),
        (
            "write_body", [.i32, .i32, .i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("write_body")
                let bytes = try guest.readBytes(p.u32(1), p.u32(2))
                try exchange.writeBody(try WasmGuest.bodyKind(p.u32(0)), bytes)
            }
        ),
        (
            "get_status_code", [], [.i32],
            { guest, _, out in
                out[0] = .i32(UInt32(try guest.currentExchange("get_status_code").status))
            }
        ),
        (
            "set_status_code", [.i32], [],
            { guest, p, _ in
                let exchange = try guest.currentExchange("set_status_code")
                let code = p.u32(0)
                guard (100...599).contains(code) else {
                    throw WasmGuestError.abi("set_status_code: \(code) is not a status code from 100 to 599")
                }
                exchange.status = Int(code)
                if exchange.phase == .response { exchange.responseChanged = true }
            }
        ),
        (
            "get_source_addr", [.i32, .i32], [.i32],
            { guest, p, out in
                let exchange = try guest.currentExchange("get_source_addr")
                out[0] = .i32(
                    try guest.write(
                        WasmGuest.sourceAddress(exchange.request.remoteAddress).utf8,
                        to: p.u32(0),
                        limit: p.u32(1)
                    )
                )
            }
        ),
    ]

    /// The ABI's log levels: -1 debug, 0 info, 1 warn, 2 error, 3 none.
    static func logLevel(_ level: Int32) -> Logger.Level? {
        switch level {
        case ...(-1): .debug
        case 0: .info
        case 1: .warning
        case 2: .error
        default: nil
        }
    }

    static func headerKind(_ raw: UInt32) throws -> HeaderKind {
        guard let kind = HeaderKind(rawValue: raw) else { throw WasmGuestError.abi("unknown header kind \(raw)") }
        return kind
    }

    static func bodyKind(_ raw: UInt32) throws -> BodyKind {
        guard let kind = BodyKind(rawValue: raw) else { throw WasmGuestError.abi("unknown body kind \(raw)") }
        return kind
    }

    /// `ip:port`, IPv6 in brackets, as Go's `net/http` gives `RemoteAddr`.
    static func sourceAddress(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "" }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }

    /// A header name and value from a set/add call; control characters fail the request.
    func readHeaderField(_ p: HostParameters) throws -> (String, String) {
        let name = try self.readString(p.u32(1), p.u32(2))
        let value = try self.readString(p.u32(3), p.u32(4))
        guard HTTPToken.isToken(name) else {
            throw WasmGuestError.abi("\"\(name.prefix(64))\" is not a header name")
        }
        guard value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw WasmGuestError.abi("the value of header \(name) holds control characters")
        }
        return (name, value)
    }

    /// Writes strings NUL-terminated; the result is `count << 32 | length`, zero for none.
    func writeNULTerminated(_ strings: [String], to offset: UInt32, limit: UInt32) throws -> UInt64 {
        guard !strings.isEmpty else { return 0 }
        var bytes: [UInt8] = []
        for string in strings {
            bytes.append(contentsOf: string.utf8)
            bytes.append(0)
        }
        let length = try self.write(bytes, to: offset, limit: limit)
        return UInt64(strings.count) << 32 | UInt64(length)
    }
}

/// The parameters of a host call, read as the ABI's integers.
struct HostParameters {
    let values: UnsafeBufferPointer<Value>

    func u32(_ index: Int) -> UInt32 {
        switch self.values[index] {
        case .i32(let value): value
        case .i64(let value): UInt32(truncatingIfNeeded: value)
        default: 0
        }
    }

    func i32(_ index: Int) -> Int32 { Int32(bitPattern: self.u32(index)) }
}

/// RFC 9110 tokens (methods and header names).
enum HTTPToken {
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                    || "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
    }
}
