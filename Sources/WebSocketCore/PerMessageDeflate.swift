/// The `permessage-deflate` extension (RFC 7692) as negotiated for one connection.
///
/// The server accepts the first offer it can honour and answers with exactly the parameters
/// that apply; an offer with an unknown or malformed parameter is declined (§5.1), and a
/// client whose offers are all declined talks without compression.
public struct PerMessageDeflate: Sendable, Equatable {
    /// The server resets its compressor after every message (`server_no_context_takeover`).
    public var serverNoContextTakeover: Bool
    /// The client resets its compressor after every message (`client_no_context_takeover`), so
    /// the server may drop its decompressor's window between messages.
    public var clientNoContextTakeover: Bool
    /// The LZ77 window the server compresses with (`server_max_window_bits`, 8 to 15).
    public var serverMaxWindowBits: Int
    /// Whether the client asked for `server_max_window_bits`; the answer must then carry it.
    public var serverMaxWindowBitsRequested: Bool

    public init(
        serverNoContextTakeover: Bool = false,
        clientNoContextTakeover: Bool = false,
        serverMaxWindowBits: Int = 15,
        serverMaxWindowBitsRequested: Bool = false
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.serverMaxWindowBitsRequested = serverMaxWindowBitsRequested
    }

    /// The extension's name in `Sec-WebSocket-Extensions`.
    public static let name = "permessage-deflate"

    /// Picks the first acceptable `permessage-deflate` offer among the `Sec-WebSocket-Extensions`
    /// header values; nil when there is none.
    ///
    /// - Parameter requireClientNoContextTakeover: answer with `client_no_context_takeover`
    ///   even when the client did not offer it (§7.1.1.2 allows it), so the server can free its
    ///   decompressor between messages; a server holding many idle connections wants that.
    public static func negotiate(offers headerValues: [String], requireClientNoContextTakeover: Bool) -> Self? {
        for offer in Self.offers(in: headerValues) where offer.name == Self.name {
            if var accepted = Self.accept(offer.parameters) {
                if requireClientNoContextTakeover { accepted.clientNoContextTakeover = true }
                return accepted
            }
        }
        return nil
    }

    /// The `Sec-WebSocket-Extensions` value answering the accepted offer.
    public var responseHeaderValue: String {
        var value = Self.name
        if self.serverNoContextTakeover { value += "; server_no_context_takeover" }
        if self.clientNoContextTakeover { value += "; client_no_context_takeover" }
        if self.serverMaxWindowBitsRequested { value += "; server_max_window_bits=\(self.serverMaxWindowBits)" }
        return value
    }

    /// One offer's parameters, checked: each at most once, values where the RFC wants them.
    private static func accept(_ parameters: [(name: String, value: String?)]) -> Self? {
        var result = Self()
        var seen = Set<String>()
        for (name, value) in parameters {
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                result.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                result.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = Self.windowBits(value) else { return nil }
                result.serverMaxWindowBits = bits
                result.serverMaxWindowBitsRequested = true
            case "client_max_window_bits":
                // Without a value the client merely supports the parameter; with one it will use
                // at most that window. Either way a 15-bit decompressor reads what it sends.
                if let value, Self.windowBits(value) == nil { return nil }
            default:
                return nil
            }
        }
        return result
    }

    private static func windowBits(_ text: String) -> Int? {
        var text = Substring(text)
        if text.count >= 2, text.first == "\"", text.last == "\"" { text = text.dropFirst().dropLast() }
        guard text.allSatisfy(\.isASCII), let bits = Int(text), (8...15).contains(bits), !text.hasPrefix("0") else {
            return nil
        }
        return bits
    }

    /// `Sec-WebSocket-Extensions` values as extensions with their parameters (RFC 6455 §9.1).
    static func offers(in headerValues: [String]) -> [(name: String, parameters: [(name: String, value: String?)])] {
        var offers: [(name: String, parameters: [(name: String, value: String?)])] = []
        for headerValue in headerValues {
            for element in headerValue.split(separator: ",") {
                let parts = element.split(separator: ";").map { $0.trimmingSpaces() }
                guard let name = parts.first, !name.isEmpty else { continue }
                var parameters: [(name: String, value: String?)] = []
                for part in parts.dropFirst() {
                    if let equals = part.firstIndex(of: "=") {
                        parameters.append(
                            (
                                String(part[..<equals].trimmingSpaces()).lowercased(),
                                String(part[part.index(after: equals)...].trimmingSpaces())
                            )
                        )
                    } else {
                        parameters.append((String(part).lowercased(), nil))
                    }
                }
                offers.append((String(name).lowercased(), parameters))
            }
        }
        return offers
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
