import NIOCore
import NIOHTTP1

// MARK: Bodies as the guest reads and writes them

extension WasmExchange {
    /// Reads the next part of a body into the guest; the result is `eof << 32 | length`.
    ///
    /// The response body is readable in the response phase when the guest enabled
    /// `buffer_response`, and in the request phase once the guest wrote one. The request body
    /// is not available to guests yet (`buffer_request` is never granted): a request without
    /// one reads as empty, reading one that has a body fails the request.
    func readBody(_ kind: BodyKind, into guest: WasmGuest, at offset: UInt32, limit: UInt32) throws -> UInt64 {
        switch kind {
        case .request:
            let headers = self.request.head.headers
            let hasBody =
                headers.contains(name: "transfer-encoding")
                || headers["content-length"].contains { $0 != "0" }
            guard !hasBody else {
                throw WasmGuestError.abi("read_body: this host does not pass request bodies to guests yet")
            }
            return 1 << 32
        case .response:
            if self.phase == .response && !self.features.contains(.bufferResponse) {
                throw WasmGuestError.abi("read_body: the response body is readable only with buffer_response enabled")
            }
            guard let body = self.responseBody, self.responseBodyReadIndex < body.readableBytes else { return 1 << 32 }
            let count = min(Int(limit), body.readableBytes - self.responseBodyReadIndex)
            let bytes = body.readableBytesView.dropFirst(self.responseBodyReadIndex).prefix(count)
            let written = try guest.write(bytes, to: offset, limit: limit)
            self.responseBodyReadIndex += count
            let eof: UInt64 = self.responseBodyReadIndex == body.readableBytes ? 1 : 0
            return eof << 32 | UInt64(written)
        }
    }

    /// Writes a part of a body from the guest: the first write in a phase replaces the body,
    /// later ones append.
    func writeBody(_ kind: BodyKind, _ bytes: [UInt8]) throws {
        switch kind {
        case .request:
            throw WasmGuestError.abi("write_body: this host does not let guests replace request bodies yet")
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
