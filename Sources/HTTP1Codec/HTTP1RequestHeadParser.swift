/// Parses an HTTP/1.1 request head in place, strictly by RFC 9112.
///
/// Refused, each with its ``HTTP1ParseError``: a bare CR or a bare LF (lines end with CRLF),
/// obsolete line folding, whitespace before a field's colon, a name that is not a token, NUL and
/// other control characters in a value, Content-Length with Transfer-Encoding, more than one
/// Content-Length, a Content-Length that is not 1 to 18 digits, Transfer-Encoding in HTTP/1.0 or
/// other than one `chunked` (or with a tab in or after it, or an empty list element), more than one Host, and an HTTP/1.1 request without Host whose target
/// is not in absolute form, a target outside the four forms of RFC 9112 3.2 (and userinfo in an
/// absolute-form authority). These are the ambiguities request smuggling is built on; a request the
/// gateway reads one way must not be readable another way by the upstream behind it.
///
/// The parser keeps no state between calls: give it all bytes received so far for the head,
/// and it answers ``Result/incomplete`` until the empty line that ends the head has arrived.
/// A caller bounds the head's size (the parser reads whatever it is given).
///
/// ```swift
/// switch buffer.withUnsafeReadableBytes(HTTP1RequestHeadParser.parse) {
/// case .complete(let head): print(head.method(in: buffer), head.keepAlive)
/// case .incomplete: break  // read more
/// case .refused(let error): print(error.status, error)
/// }
/// ```
public enum HTTP1RequestHeadParser {
    public enum Result: Sendable, Hashable {
        case incomplete
        case complete(HTTP1RequestHead)
        case refused(HTTP1ParseError)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let colon = UInt8(ascii: ":")

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        Self.parse(bytes, options: Options())
    }

    /// Parses with `options` (``Options/init()`` is the strictest reading, which ``parse(_:)`` uses).
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: Options) -> Result {
        let count = bytes.count
        var index = 0
        // Empty lines before the request line are ignored (RFC 9112 2.2).
        while index < count, bytes[index] == Self.cr || bytes[index] == Self.lf {
            if bytes[index] == Self.lf { return .refused(HTTP1ParseError(.bareLF)) }
            if index + 1 == count { return .incomplete }
            guard bytes[index + 1] == Self.lf else { return .refused(HTTP1ParseError(.bareCR)) }
            index += 2
        }
        if index == count { return .incomplete }

        // request-line = method SP request-target SP HTTP-version CRLF
        let methodStart = index
        while index < count, Self.isTokenByte(bytes[index]) { index += 1 }
        if index == count { return .incomplete }
        guard index > methodStart, bytes[index] == Self.space else {
            return .refused(Self.lineError(bytes, index, .invalidMethod))
        }
        let method = methodStart..<index
        index += 1
        if options.allowsSpacesAfterMethod {
            while index < count, bytes[index] == Self.space { index += 1 }
            if index == count { return .incomplete }
        }
        let targetStart = index
        while index < count, bytes[index] > Self.space, bytes[index] < 0x7F { index += 1 }
        if index == count {
            // Refuse a target as soon as no ending can make it valid, as llhttp does.
            guard
                index == targetStart
                    || Self.isValidTargetForm(
                        bytes,
                        targetStart..<index,
                        method: method,
                        complete: false,
                        options: options
                    )
            else { return .refused(HTTP1ParseError(.invalidTarget)) }
            return .incomplete
        }
        guard index > targetStart, bytes[index] == Self.space else {
            return .refused(Self.lineError(bytes, index, .invalidTarget))
        }
        let target = targetStart..<index
        guard Self.isValidTargetForm(bytes, target, method: method, complete: true, options: options) else {
            return .refused(HTTP1ParseError(.invalidTarget))
        }
        index += 1
        // "HTTP/1.1" CRLF
        guard count - index >= 10 else {
            guard Self.isPrefixOfVersion(bytes, from: index) else { return .refused(HTTP1ParseError(.invalidVersion)) }
            // A version other than 1.0 and 1.1 is refused as soon as its digits are in.
            if count - index > 5, bytes[index + 5] != UInt8(ascii: "1") {
                return .refused(HTTP1ParseError(.unsupportedVersion))
            }
            if count - index > 7, bytes[index + 7] > UInt8(ascii: "1") {
                return .refused(HTTP1ParseError(.unsupportedVersion))
            }
            return .incomplete
        }
        guard bytes[index] == UInt8(ascii: "H"), bytes[index + 1] == UInt8(ascii: "T"),
            bytes[index + 2] == UInt8(ascii: "T"), bytes[index + 3] == UInt8(ascii: "P"),
            bytes[index + 4] == UInt8(ascii: "/"), Self.isDigit(bytes[index + 5]),
            bytes[index + 6] == UInt8(ascii: "."), Self.isDigit(bytes[index + 7])
        else { return .refused(HTTP1ParseError(.invalidVersion)) }
        guard bytes[index + 8] == Self.cr else { return .refused(Self.lineError(bytes, index + 8, .invalidVersion)) }
        guard bytes[index + 9] == Self.lf else { return .refused(HTTP1ParseError(.bareCR)) }
        guard bytes[index + 5] == UInt8(ascii: "1"), bytes[index + 7] <= UInt8(ascii: "1") else {
            return .refused(HTTP1ParseError(.unsupportedVersion))
        }
        let minorVersion = Int(bytes[index + 7] - UInt8(ascii: "0"))
        index += 10

        var head = HTTP1RequestHead(
            method: method,
            target: target,
            minorVersion: minorVersion,
            fields: [],
            framing: .none,
            connection: [],
            host: nil,
            expect: nil,
            upgrade: nil,
            length: 0
        )
        head.fields.reserveCapacity(16)
        var contentLength: Int?
        var codings = TransferCodings()

        // *( field-line CRLF ) CRLF
        fields: while true {
            let field: HTTP1RequestHead.Field
            switch Self.fieldLine(bytes, at: index) {
            case .incomplete: return .incomplete
            case .refused(let error): return .refused(error)
            case .sectionEnd(let next):
                index = next
                break fields
            case .field(let line, let next):
                field = line
                index = next
            }
            let name = field.name
            switch name.count {
            case 4 where Self.nameEquals(bytes, name, "host"):
                if head.host != nil {
                    guard !options.checksHost else { return .refused(HTTP1ParseError(.multipleHosts)) }
                } else {
                    head.host = head.fields.count
                }
            case 6 where Self.nameEquals(bytes, name, "expect"):
                if head.expect == nil { head.expect = head.fields.count }
            case 7 where Self.nameEquals(bytes, name, "upgrade"):
                if head.upgrade == nil { head.upgrade = head.fields.count }
            case 10 where Self.nameEquals(bytes, name, "connection"):
                head.connection.formUnion(Self.connectionOptions(bytes, field.value))
            case 14 where Self.nameEquals(bytes, name, "content-length"):
                guard contentLength == nil else { return .refused(HTTP1ParseError(.multipleContentLengths)) }
                guard let length = Self.contentLength(bytes, field, lineEnd: index - 2) else {
                    return .refused(HTTP1ParseError(.invalidContentLength))
                }
                contentLength = length
            case 17 where Self.nameEquals(bytes, name, "transfer-encoding"):
                codings.add(bytes, field, lineEnd: index - 2)
            default:
                break
            }
            head.fields.append(field)
        }

        if codings.fields > 0 {
            if minorVersion == 0 { return .refused(HTTP1ParseError(.transferEncodingInHTTP10)) }
            if codings.isIrregular { return .refused(HTTP1ParseError(.invalidTransferEncoding)) }
            // RFC 9112 6.3: a request whose final coding is not chunked cannot be framed (400);
            // chunked twice is not allowed (7); one the gateway does not implement gets 501 (6.1).
            guard codings.lastIsChunked, codings.chunked == 1 else {
                return .refused(HTTP1ParseError(.chunkedNotFinal))
            }
            if contentLength != nil { return .refused(HTTP1ParseError(.contentLengthWithTransferEncoding)) }
            guard codings.others == 0 else { return .refused(HTTP1ParseError(.unsupportedTransferCoding)) }
            head.framing = .chunked
        } else if let contentLength, contentLength > 0 {
            head.framing = .contentLength(contentLength)
        }
        if options.checksHost && head.host == nil && minorVersion == 1 && !Self.isAbsoluteForm(bytes, target) {
            return .refused(HTTP1ParseError(.missingHost))
        }
        head.length = index
        return .complete(head)
    }

    /// What one line of a field section is.
    enum FieldLine {
        case incomplete
        case refused(HTTP1ParseError)
        /// The empty line that ends the section; `next` is the offset after it.
        case sectionEnd(next: Int)
        /// A field line; `next` is the offset after its CRLF.
        case field(HTTP1RequestHead.Field, next: Int)
    }

    /// Reads the field line (or the section's final empty line) at `start`:
    /// `field-name ":" OWS field-value OWS CRLF`, refusing obs-fold, whitespace before the colon,
    /// a name that is not a token, control characters in the value and lone CRs and LFs.
    @inline(__always)
    static func fieldLine(_ bytes: UnsafeRawBufferPointer, at start: Int) -> FieldLine {
        let count = bytes.count
        var index = start
        if index == count { return .incomplete }
        let first = bytes[index]
        if first == Self.cr {
            if index + 1 == count { return .incomplete }
            guard bytes[index + 1] == Self.lf else { return .refused(HTTP1ParseError(.bareCR)) }
            return .sectionEnd(next: index + 2)
        }
        if first == Self.lf { return .refused(HTTP1ParseError(.bareLF)) }
        if first == Self.space || first == Self.tab { return .refused(HTTP1ParseError(.obsFold)) }
        let nameStart = index
        while index < count, Self.isTokenByte(bytes[index]) { index += 1 }
        if index == count { return .incomplete }
        guard bytes[index] == Self.colon else {
            let byte = bytes[index]
            if byte == Self.space || byte == Self.tab { return .refused(HTTP1ParseError(.whitespaceBeforeColon)) }
            return .refused(Self.lineError(bytes, index, .invalidFieldName))
        }
        guard index > nameStart else { return .refused(HTTP1ParseError(.invalidFieldName)) }
        let name = nameStart..<index
        index += 1
        while index < count, bytes[index] == Self.space || bytes[index] == Self.tab { index += 1 }
        let valueStart = index
        var valueEnd = index
        while index < count {
            let byte = bytes[index]
            if byte > Self.space && byte != 0x7F {
                index += 1
                valueEnd = index
            } else if byte == Self.space || byte == Self.tab {
                index += 1
            } else {
                break
            }
        }
        if index == count { return .incomplete }
        guard bytes[index] == Self.cr else { return .refused(Self.lineError(bytes, index, .invalidFieldValue)) }
        if index + 1 == count { return .incomplete }
        guard bytes[index + 1] == Self.lf else { return .refused(HTTP1ParseError(.bareCR)) }
        return .field(HTTP1RequestHead.Field(name: name, value: valueStart..<valueEnd), next: index + 2)
    }

    /// The value of the `Content-Length` field line ending (before its CRLF) at `lineEnd`, or
    /// nil when it is not 1 to 18 digits. Tabs around the digits are OWS to RFC 9110 but refused
    /// by llhttp; no sender sends them, and a length two parsers might read differently is
    /// refused.
    static func contentLength(_ bytes: UnsafeRawBufferPointer, _ field: HTTP1RequestHead.Field, lineEnd: Int) -> Int? {
        for offset in (field.name.upperBound + 1)..<lineEnd where bytes[offset] == Self.tab { return nil }
        return Self.decimal(bytes, field.value)
    }

    /// The transfer codings of all `Transfer-Encoding` lines, read as one list (RFC 9110 5.3).
    struct TransferCodings {
        var fields = 0
        var chunked = 0
        var others = 0
        var lastIsChunked = false
        /// A tab inside or after a value, or an empty list element (`chunked,`): allowed by RFC
        /// 9110 (OWS; empty elements are ignored), but llhttp reads `chunked<TAB>` and `chunked,`
        /// as a coding other than chunked, so a message framed by them would be read two ways.
        /// (A tab before the value is read alike by both.)
        var isIrregular = false

        /// Adds the codings of `field`, whose line ends (before its CRLF) at `lineEnd`.
        mutating func add(_ bytes: UnsafeRawBufferPointer, _ field: HTTP1RequestHead.Field, lineEnd: Int) {
            self.fields += 1
            let value = field.value
            var elementHasToken = false
            for index in value.lowerBound..<lineEnd {
                switch bytes[index] {
                case UInt8(ascii: "\t"): self.isIrregular = true
                case UInt8(ascii: ","):
                    if !elementHasToken { self.isIrregular = true }
                    elementHasToken = false
                case UInt8(ascii: " "): break
                default: elementHasToken = true
                }
            }
            if !value.isEmpty && !elementHasToken { self.isIrregular = true }
            HTTP1RequestHeadParser.forEachListElement(bytes, value) { token in
                if HTTP1RequestHeadParser.nameEquals(bytes, token, "chunked") {
                    self.chunked += 1
                    self.lastIsChunked = true
                } else {
                    self.others += 1
                    self.lastIsChunked = false
                }
            }
        }
    }

    /// Calls `body` with each non-empty element of the comma-separated list at `range`, without
    /// the whitespace around it.
    @inline(__always)
    static func forEachListElement(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        _ body: (Range<Int>) -> Void
    ) {
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var tokenStart = start
            var tokenEnd = end
            while tokenStart < tokenEnd, bytes[tokenStart] == Self.space || bytes[tokenStart] == Self.tab {
                tokenStart += 1
            }
            while tokenEnd > tokenStart, bytes[tokenEnd - 1] == Self.space || bytes[tokenEnd - 1] == Self.tab {
                tokenEnd -= 1
            }
            if tokenEnd > tokenStart { body(tokenStart..<tokenEnd) }
            start = end + 1
        }
    }

    /// A byte that ends a request-line element or a field: CR not followed by LF, a bare LF, or
    /// `otherwise`.
    static func lineError(
        _ bytes: UnsafeRawBufferPointer,
        _ index: Int,
        _ otherwise: HTTP1ParseError.Reason
    ) -> HTTP1ParseError {
        switch bytes[index] {
        case Self.lf: HTTP1ParseError(.bareLF)
        case Self.cr where index + 1 < bytes.count && bytes[index + 1] != Self.lf: HTTP1ParseError(.bareCR)
        default: HTTP1ParseError(otherwise)
        }
    }

    private static func isPrefixOfVersion(_ bytes: UnsafeRawBufferPointer, from index: Int) -> Bool {
        let pattern: [UInt8?] = Array("HTTP/".utf8) + [nil, UInt8(ascii: "."), nil, Self.cr, Self.lf]
        for offset in 0..<(bytes.count - index) {
            let byte = bytes[index + offset]
            if let expected = pattern[offset] {
                guard byte == expected else { return false }
            } else {
                guard Self.isDigit(byte) else { return false }
            }
        }
        return true
    }

    /// RFC 9110 tchar.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        Self.tokenTable[Int(byte)]
    }

    private static let tokenTable: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Whether the name at `range` is `lowercased` (same length, ASCII case-insensitive).
    static func nameEquals(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        _ lowercased: StaticString
    )
        -> Bool
    {
        lowercased.withUTF8Buffer { expected in
            guard expected.count == range.count else { return false }
            var offset = 0
            for index in range {
                var byte = bytes[index]
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
                guard byte == expected[offset] else { return false }
                offset += 1
            }
            return true
        }
    }

    /// 1 to 18 decimal digits (no sign, no spaces inside, no list), else `nil`.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let byte = bytes[index]
            guard Self.isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// The `close`, `keep-alive` and `upgrade` tokens of a `Connection` value.
    static func connectionOptions(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>
    )
        -> HTTP1RequestHead.ConnectionOptions
    {
        var options: HTTP1RequestHead.ConnectionOptions = []
        Self.forEachListElement(bytes, range) { token in
            switch token.count {
            case 5 where Self.nameEquals(bytes, token, "close"): options.insert(.close)
            case 7 where Self.nameEquals(bytes, token, "upgrade"): options.insert(.upgrade)
            case 10 where Self.nameEquals(bytes, token, "keep-alive"): options.insert(.keepAlive)
            default: break
            }
        }
        return options
    }

    /// The four forms of RFC 9112 3.2: origin-form (`/path?query`), absolute-form
    /// (`scheme://authority/path`), authority-form (`host:port`, CONNECT only) and asterisk-form
    /// (`*`, OPTIONS only). No fragment (`#`) in any of them. With `complete: false`, whether
    /// `target` can still become one of them as more bytes arrive.
    private static func isValidTargetForm(
        _ bytes: UnsafeRawBufferPointer,
        _ target: Range<Int>,
        method: Range<Int>,
        complete: Bool,
        options: Options
    )
        -> Bool
    {
        for index in target where bytes[index] == UInt8(ascii: "#") { return false }
        let first = bytes[target.lowerBound]
        if Self.isExactly(bytes, method, "CONNECT") {
            // authority-form only: host and port, no path, no query.
            for index in target where !Self.isAuthorityByte(bytes[index]) || bytes[index] == UInt8(ascii: "@") {
                return false
            }
            return true
        }
        if first == UInt8(ascii: "/") { return true }
        if first == UInt8(ascii: "*") { return target.count == 1 && Self.isExactly(bytes, method, "OPTIONS") }
        // absolute-form: a scheme of letters only (RFC 3986 allows digits, "+", "-" and "." too,
        // which llhttp refuses and no HTTP scheme uses), then "://" and an authority.
        guard Self.isLetter(first) else { return false }
        var index = target.lowerBound + 1
        while index < target.upperBound, Self.isLetter(bytes[index]) { index += 1 }
        if !complete {
            // "scheme", "scheme:", "scheme:/", "scheme://" so far.
            for (offset, expected) in [UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "/")].enumerated() {
                if index + offset == target.upperBound { return true }
                guard bytes[index + offset] == expected else { return false }
            }
            if index + 3 == target.upperBound { return true }
        }
        guard target.upperBound - index > 3, bytes[index] == UInt8(ascii: ":"),
            bytes[index + 1] == UInt8(ascii: "/"), bytes[index + 2] == UInt8(ascii: "/"),
            bytes[index + 3] != UInt8(ascii: "/")
        else { return false }
        // The authority, up to the path or query: host and port characters. No userinfo: a
        // sender must not send one (RFC 9110 4.2.4), and the gateway has always refused it
        // (with `checksHost` off, the caller refuses it).
        index += 3
        while index < target.upperBound, bytes[index] != UInt8(ascii: "/"), bytes[index] != UInt8(ascii: "?") {
            guard Self.isAuthorityByte(bytes[index]), bytes[index] != UInt8(ascii: "@") || !options.checksHost else {
                return false
            }
            index += 1
        }
        return true
    }

    /// unreserved / pct-encoded / sub-delims / ":" / "@" / "[" / "]" (RFC 3986 3.2).
    private static func isAuthorityByte(_ byte: UInt8) -> Bool {
        if Self.isLetter(byte) || Self.isDigit(byte) { return true }
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
            UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "["), UInt8(ascii: "]"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    private static func isLetter(_ byte: UInt8) -> Bool {
        byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")
    }

    /// Case-sensitive comparison (methods are case-sensitive, RFC 9110 9.1).
    private static func isExactly(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { expected in
            guard expected.count == range.count else { return false }
            var offset = 0
            for index in range {
                guard bytes[index] == expected[offset] else { return false }
                offset += 1
            }
            return true
        }
    }

    /// `http://` or `https://` (any case) at the start of the target.
    private static func isAbsoluteForm(_ bytes: UnsafeRawBufferPointer, _ target: Range<Int>) -> Bool {
        for scheme: StaticString in ["http://", "https://"] {
            let length = scheme.utf8CodeUnitCount
            if target.count > length,
                Self.nameEquals(bytes, target.lowerBound..<(target.lowerBound + length), scheme)
            {
                return true
            }
        }
        return false
    }
}
