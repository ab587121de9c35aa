import WasmKit

// MARK: Reading and writing the guest's linear memory, every access bounds-checked

extension WasmGuest {
    /// The bytes at `offset..<offset+count`; an out-of-bounds range fails the request.
    func readBytes(_ offset: UInt32, _ count: UInt32) throws -> [UInt8] {
        guard let memory = self.memory, UInt64(offset) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw WasmGuestError.abi("a host call read \(count) bytes at \(offset), outside the guest's memory")
        }
        if count == 0 { return [] }
        return memory.withUnsafeBufferPointer(offset: UInt(offset), count: Int(count)) { Array($0) }
    }

    /// The UTF-8 text at `offset..<offset+count`.
    func readString(_ offset: UInt32, _ count: UInt32) throws -> String {
        String(decoding: try self.readBytes(offset, count), as: UTF8.self)
    }

    /// Writes `bytes` at `offset` when they fit in `limit`, as the ABI's buffer functions do;
    /// returns their length either way (a guest retries with a larger buffer).
    func write<Bytes: Collection<UInt8>>(_ bytes: Bytes, to offset: UInt32, limit: UInt32) throws -> UInt32 {
        let count = bytes.count
        guard count <= Int(limit) else { return UInt32(truncatingIfNeeded: count) }
        guard let memory = self.memory, UInt64(offset) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw WasmGuestError.abi("a host call wrote \(count) bytes at \(offset), outside the guest's memory")
        }
        if count > 0 {
            memory.withUnsafeMutableBufferPointer(offset: UInt(offset), count: count) { buffer in
                buffer.copyBytes(from: bytes)
            }
        }
        return UInt32(count)
    }
}
