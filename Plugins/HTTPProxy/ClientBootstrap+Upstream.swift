import NIOCore
import NIOPosix

extension ClientBootstrap {
    /// Connects to `upstream`: straight to its address when it is an IP literal, else through
    /// the resolver.
    func connect(to upstream: Upstream) -> EventLoopFuture<any Channel> {
        if let address = upstream.literalAddress { return self.connect(to: address) }
        return self.connect(host: upstream.host, port: upstream.port)
    }
}
