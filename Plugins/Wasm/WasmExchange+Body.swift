import NIOCore
import NIOHTTP1

// MARK: Bodies as the guest reads and writes them

extension WasmExchange {
    /// Reads the next part of a body into the guest; the result is `eof << 32 | length`.
    ///
    /// The request body is readable when it is held (`buffer_request` enabled while the
    /// instance initialized), in `handle_request` and again from its start in
    /// `handle_response`; otherwise a request without one reads as empty, and reading one that
    /// has a body fails the request. The response body is readable in the response phase when
    /// the guest enabled `buffer_response`, and in the request phase once the guest wrote one.
    func readBody(_ kind: BodyKind, into guest: WasmGuest, at offset: UInt32, limit: UInt32) throws -> UInt64 {
        switch kind {
        case .request:
            guard let body = self.request.heldBody else {
                let headers = self.request.head.headers
                let hasBody =
                    headers.contains(name: "transfer-encoding")
                    || headers["content-length"].contains { $0 != "0" }
                guard !hasBody else {
                    throw WasmGuestError.abi(
                        "read_body: the request body is passed to guests that enable buffer_request while initializing (_initialize)"
                    )
                }
                return 1 << 32
            }
            return try Self.read(body, from: &self.requestBodyReadIndex, into: guest, at: offset, limit: limit)
        case .response:
            if self.phase == .response && !self.features.contains(.bufferResponse) {
                throw WasmGuestError.abi("read_body: the response body is readable only with buffer_response enabled")
            }
            guard let body = self.responseBody else { return 1 << 32 }
            return try Self.read(body, from: &self.responseBodyReadIndex, into: guest, at: offset, limit: limit)
        }
    }

    /// Copies the next part of `body` from `index` into the guest: `eof << 32 | length`.
    private static func read(
        _ body: ByteBuffer,
        from index: inout Int,
        into guest: WasmGuest,
        at offset: UInt32,
        limit: UInt32
    ) throws -> UInt64 {
        guard index < body.readableBytes else { return 1 << 32 }
        let count = min(Int(limit), body.readableBytes - index)
        let bytes = body.readableBytesView.dropFirst(index).prefix(count)
        let written = try guest.write(bytes, to: offset, limit: limit)
        index += count
        let eof: UInt64 = index == body.readableBytes ? 1 : 0
        return eof << 32 | UInt64(written)
    }

    /// Writes a part of a body from the guest: the first write in a phase replaces the body,
    /// later ones append.
    func writeBody(_ kind: BodyKind, _ bytes: [UInt8]) throws {
        switch kind {
        case .request:
            guard self.phase == .request, self.request.heldBody != nil else {
                throw WasmGuestError.abi(
                    "write_body: the request body can be replaced only in handle_request with buffer_request enabled while initializing"
                )
            }
            if !self.wroteRequestBody {
                self.request.heldBody = ByteBuffer()
                self.wroteRequestBody = true
            }
            self.request.heldBody?.writeBytes(bytes)
        case .response:
            if self.phase == .response && !self.features.contains(.bufferResponse) {
                throw WasmGuestError.abi(
                    "write_body: the response body can be replaced only with buffer_response enabled"
                )
            }
            if !self.wroteResponseBody {
                self.responseBody = ByteBuffer()
                self.wroteResponseBody = true
            }
            self.responseBody?.writeBytes(bytes)
            if self.phase == .response { self.responseChanged = true }
        }
    }
}
