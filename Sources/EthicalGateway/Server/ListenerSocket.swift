import NIOConcurrencyHelpers
import NIOCore

/// One bound listening socket and the pipeline its accepted connections get. A reload that keeps
/// the listener's address and port keeps the socket and swaps only the pipeline (new TLS
/// certificates, HSTS, redirect port), so the listener never stops accepting.
final class ListenerSocket: Sendable {
    let channel: any Channel
    /// What the next accepted connection is configured with.
    let pipeline: NIOLockedValueBox<ListenerPipeline>
    private let identity: NIOLockedValueBox<Identity>
    /// A pipeline and identity prepared by a reload, installed once the reload commits.
    private let prepared = NIOLockedValueBox<(ListenerPipeline, Identity)?>(nil)

    private struct Identity {
        var name: String
        var configuration: ListenerConfiguration
    }

    init(
        channel: any Channel,
        pipeline: NIOLockedValueBox<ListenerPipeline>,
        name: String,
        configuration: ListenerConfiguration
    ) {
        self.channel = channel
        self.pipeline = pipeline
        self.identity = NIOLockedValueBox(Identity(name: name, configuration: configuration))
    }

    /// The listener's name in the configuration in service.
    var name: String { self.identity.withLockedValue { $0.name } }

    /// Whether `listener` can take this socket over: the same address, and the same port (a
    /// listener on port 0, which binds an ephemeral port, keeps its socket only under its name).
    func matches(_ listener: ListenerConfiguration, sameName: Bool) -> Bool {
        let current = self.identity.withLockedValue { $0.configuration }
        guard current.address == listener.address else { return false }
        if listener.port == 0 { return sameName && current.port == 0 }
        return current.port == listener.port
    }

    /// Keeps `pipeline` for ``install()``.
    func prepare(_ pipeline: ListenerPipeline, name: String, configuration: ListenerConfiguration) {
        self.prepared.withLockedValue { $0 = (pipeline, Identity(name: name, configuration: configuration)) }
    }

    /// Makes the prepared pipeline the one new connections get.
    func install() {
        guard
            let (pipeline, identity) = self.prepared.withLockedValue({ value in
                defer { value = nil }; return value
            })
        else { return }
        self.pipeline.withLockedValue { $0 = pipeline }
        self.identity.withLockedValue { $0 = identity }
    }
}
