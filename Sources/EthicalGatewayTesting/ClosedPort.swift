#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A loopback port where nothing listens, held for the test's lifetime: a socket is bound to it
/// but never listens, so connections are refused and no other test's server can take the port
/// (a stopped server's port may be handed to the next server that binds port 0). Release it with
/// ``release()`` when the test is done.
public final class ClosedPort: UpstreamAddress {
    public let port: Int
    private let descriptor: Int32

    public var url: String { "http://127.0.0.1:\(self.port)" }

    public init() throws {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw ProcessRunnerError(message: "socket(): errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw ProcessRunnerError(message: "cannot reserve a loopback port: errno \(errno)")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Gives the port back; call it once, when the test is done (`defer { port.release() }`).
    public func release() { close(self.descriptor) }
}
