extension HTTP1RequestHeadParser {
    /// Which of the parser's checks apply. `Options()` is the strictest reading (every check
    /// the type's documentation lists), the one the differential fuzzing holds against llhttp.
    ///
    /// The gateway's HTTP/1.1 decoder relaxes two of them, neither of which touches framing:
    ///
    /// ```swift
    /// var options = HTTP1RequestHeadParser.Options()
    /// options.checksHost = false            // CanonicalRequest answers 400 and keeps the connection
    /// options.allowsSpacesAfterMethod = true  // "GET  /x" reads as "GET /x", as llhttp and nginx do
    /// ```
    public struct Options: Sendable, Hashable {
        /// Refuse a second `Host` field, an HTTP/1.1 request without `Host` whose target is not
        /// in absolute form, and userinfo in an absolute-form target's authority. Off, the head
        /// is returned with ``HTTP1RequestHead/host`` naming the first `Host` field (if any), and
        /// the caller checks the authority itself: such a problem leaves the framing sound, so
        /// an answer need not close the connection.
        public var checksHost = true
        /// Accept more than one space between the method and the target (RFC 9112 3 lets a
        /// recipient parse on whitespace boundaries; llhttp and nginx do).
        public var allowsSpacesAfterMethod = false

        public init() {}
    }
}
