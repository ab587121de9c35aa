/// The one form of a request path that routing, auth, filters and the upstream all see.
///
/// The codec canonicalises the path once; nothing later re-reads the raw target, so the gateway
/// and an upstream cannot disagree about which resource was asked for:
///
/// - escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 2.3) are decoded
///   (`/%61dmin` is `/admin`); every other escape is kept, with upper-case hex (`%c3%a9` is
///   `%C3%A9`); raw bytes outside ASCII are escaped the same way;
/// - `.` and `..` segments are resolved after that decoding (`/a/%2e%2e/b` is `/b`), and repeated
///   slashes merged (`//admin` is `/admin`); a trailing slash is kept;
/// - refused outright: an escape of NUL (`%00`), a malformed escape, escapes that decode to
///   invalid UTF-8 (overlong forms such as `%c0%af`), a raw backslash, control characters,
///   a fragment, and a dot segment carrying a `;` parameter (`/..;/`, which Java servlet
///   containers resolve as `..`);
/// - encoded slashes and backslashes (`%2F`, `%5C`) are kept in ``path``; ``slashesDecoded``
///   holds the form an upstream that decodes them would see, and the route's
///   ``EscapedSlashAction`` decides between them.
public struct CanonicalPath: Sendable, Equatable {
    /// The canonical path, with `%2F` and `%5C` kept encoded.
    public var path: String
    /// The path with `%2F` and `%5C` decoded to `/` and normalised again; `nil` when the path
    /// has neither.
    public var slashesDecoded: String?

    /// Why a path was refused (the gateway answers 400 with this text as the detail).
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Canonicalises `raw` (the path part of an origin-form target, without the query).
    public static func make(_ raw: Substring) -> Result<CanonicalPath, Refusal> {
        let bytes = raw.utf8
        guard bytes.first == UInt8(ascii: "/") else {
            return .failure(Refusal(description: "the request target must be an absolute path such as /index.html"))
        }
        if Self.isAlreadyCanonical(bytes) {
            return .success(CanonicalPath(path: String(raw), slashesDecoded: nil))
        }

        // Pass 1: escapes and characters; segments are split on raw slashes only.
        var segments: [[UInt8]] = []
        var segment: [UInt8] = []
        var decoded: [UInt8] = []  // every byte the path stands for, to check it is UTF-8
        var hasEncodedSlash = false
        var iterator = bytes.dropFirst().makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "/"):
                segments.append(segment)
                segment = []
                decoded.append(byte)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(RequestPath.hexValue),
                    let low = iterator.next().flatMap(RequestPath.hexValue)
                else {
                    return .failure(Refusal(description: "the path has a malformed percent-escape"))
                }
                let value = high << 4 | low
                decoded.append(value)
                if value == 0 {
                    return .failure(Refusal(description: "the path contains an encoded NUL (%00)"))
                }
                if Self.isUnreserved(value) {
                    segment.append(value)
                } else {
                    if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") { hasEncodedSlash = true }
                    Self.appendEscape(value, to: &segment)
                }
            case UInt8(ascii: "\\"):
                return .failure(Refusal(description: "the path contains a backslash"))
            case UInt8(ascii: "#"):
                return .failure(Refusal(description: "the request target must not carry a fragment (#)"))
            case 0...0x20, 0x7F:
                return .failure(Refusal(description: "the path contains a control character or space"))
            case 0x80...:
                decoded.append(byte)
                Self.appendEscape(byte, to: &segment)
            default:
                decoded.append(byte)
                segment.append(byte)
            }
        }
        segments.append(segment)
        guard String(validating: decoded, as: UTF8.self) != nil else {
            return .failure(
                Refusal(description: "the path does not decode to valid UTF-8 (overlong or invalid escapes)")
            )
        }

        guard let path = Self.resolve(segments) else {
            return .failure(
                Refusal(description: "the path has a dot segment with a parameter (\"..;\"), which servers disagree on")
            )
        }
        var slashesDecoded: String?
        if hasEncodedSlash {
            // What an upstream that decodes %2F and %5C (or treats \ as /) would see.
            var rejoined: [[UInt8]] = []
            for part in segments {
                var current: [UInt8] = []
                var index = 0
                while index < part.count {
                    if part[index] == UInt8(ascii: "%"), index + 2 < part.count,
                        (part[index + 1] == UInt8(ascii: "2") && part[index + 2] == UInt8(ascii: "F"))
                            || (part[index + 1] == UInt8(ascii: "5") && part[index + 2] == UInt8(ascii: "C"))
                    {
                        rejoined.append(current)
                        current = []
                        index += 3
                    } else {
                        current.append(part[index])
                        index += 1
                    }
                }
                rejoined.append(current)
            }
            guard let resolved = Self.resolve(rejoined) else {
                return .failure(
                    Refusal(
                        description: "the path has a dot segment with a parameter (\"..;\"), which servers disagree on"
                    )
                )
            }
            slashesDecoded = resolved
        }
        return .success(CanonicalPath(path: path, slashesDecoded: slashesDecoded))
    }

    /// Resolves `.` and `..` (RFC 3986 5.2.4) and drops empty segments but a trailing one;
    /// `nil` for a dot segment with a `;` parameter.
    private static func resolve(_ segments: [[UInt8]]) -> String? {
        var output: [[UInt8]] = []
        for (offset, segment) in segments.enumerated() {
            let isLast = offset == segments.count - 1
            if segment.first == UInt8(ascii: "."), let semicolon = segment.firstIndex(of: UInt8(ascii: ";")),
                semicolon <= 2, segment[..<semicolon].allSatisfy({ $0 == UInt8(ascii: ".") })
            {
                return nil
            }
            switch segment {
            case [UInt8(ascii: ".")]:
                if isLast { output.append([]) }
            case [UInt8(ascii: "."), UInt8(ascii: ".")]:
                if !output.isEmpty { output.removeLast() }
                if isLast { output.append([]) }
            case []:
                if isLast { output.append([]) }
            default:
                output.append(segment)
            }
        }
        var path: [UInt8] = []
        for segment in output {
            path.append(UInt8(ascii: "/"))
            path.append(contentsOf: segment)
        }
        if path.isEmpty { path = [UInt8(ascii: "/")] }
        return String(decoding: path, as: UTF8.self)
    }

    /// The common case costs one scan: no escape, no dot segment, no repeated slash, nothing to
    /// refuse or re-encode.
    private static func isAlreadyCanonical(_ bytes: Substring.UTF8View) -> Bool {
        var previousWasSlash = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: "#"), 0...0x20, 0x7F...:
                return false
            case UInt8(ascii: "/"), UInt8(ascii: "."):
                if previousWasSlash { return false }
            default:
                break
            }
            previousWasSlash = byte == UInt8(ascii: "/")
        }
        return true
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func appendEscape(_ byte: UInt8, to output: inout [UInt8]) {
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        output.append(UInt8(ascii: "%"))
        output.append(digits[Int(byte >> 4)])
        output.append(digits[Int(byte & 0x0F)])
    }
}

/// What a route does with a path that holds an encoded slash or backslash (`%2F`, `%5C`).
///
/// The route is chosen on the path with those escapes decoded (what an upstream that decodes
/// them would see), so an encoded slash can never steer a request past a route's auth; the
/// action of that route then decides. Envoy's `path_with_escaped_slashes_action` is the model.
public enum EscapedSlashAction: String, Sendable, Decodable, Hashable {
    /// Answer 400 (the default).
    case reject
    /// Forward the path with the escapes decoded (`/a%2Fb` becomes `/a/b`).
    case decode
    /// Forward the escapes unchanged, for upstreams that treat `%2F` as data (object keys).
    case keep

    public init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer().decode(String.self)
        guard let action = EscapedSlashAction(rawValue: value) else {
            throw decoder.invalid("expected \"reject\", \"decode\" or \"keep\", found \"\(value.prefix(40))\"")
        }
        self = action
    }
}
