/// Parses the trailer section after a chunked body's last chunk (RFC 9112 7.1.2): field lines,
/// then an empty line, read with the same rules as a head's fields (no obs-fold, no whitespace
/// before the colon, no control characters, lines ending with CRLF). `Content-Length`,
/// `Transfer-Encoding` and `Connection` are refused there: a sender must not put framing or
/// connection control in trailers (RFC 9110 6.5.1), llhttp refuses the first two and applies a
/// `Connection: close` it finds there, and a recipient that merged them into the head would
/// frame the message, or keep the connection, differently.
///
/// Like ``HTTP1RequestHeadParser``, it keeps no state between calls: give it every byte of the
/// section received so far.
public enum HTTP1TrailerSection {
    public enum Result: Sendable, Hashable {
        case incomplete
        /// The fields (ranges from the first byte given) and the section's length, final CRLF
        /// included.
        case complete(fields: [HTTP1RequestHead.Field], length: Int)
        case refused(HTTP1ParseError)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        var fields: [HTTP1RequestHead.Field] = []
        var index = 0
        while true {
            switch HTTP1RequestHeadParser.fieldLine(bytes, at: index) {
            case .incomplete: return .incomplete
            case .refused(let error): return .refused(error)
            case .sectionEnd(let next): return .complete(fields: fields, length: next)
            case .field(let field, let next):
                let name = field.name
                if name.count == 14 && HTTP1RequestHeadParser.nameEquals(bytes, name, "content-length")
                    || name.count == 17 && HTTP1RequestHeadParser.nameEquals(bytes, name, "transfer-encoding")
                    || name.count == 10 && HTTP1RequestHeadParser.nameEquals(bytes, name, "connection")
                {
                    return .refused(HTTP1ParseError(.framingFieldInTrailers))
                }
                fields.append(field)
                index = next
            }
        }
    }
}
