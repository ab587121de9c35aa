extension RequestLimits {
    /// The most bytes an HTTP/1 request head may take on the wire before the gateway answers
    /// 431: the configured target and field sizes, plus the request line's and the field lines'
    /// separators (four bytes per field) and 1 KiB for the method, version and line ends.
    var maxHeadBytes: Int {
        self.maxURIBytes + self.maxHeaderBytes + 4 * self.maxHeaderCount + 1024
    }
}
