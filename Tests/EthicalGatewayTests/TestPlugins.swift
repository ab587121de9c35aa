import EthicalGateway
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A backend that answers after a delay, for requests that are still in flight when something
/// happens (shutdown, reload). Registered only in tests, which also shows third-party plugins
/// plug into the registry like the built-in ones.
enum SlowBackendPlugin: BackendPlugin {
    static let id = "test-slow"

    struct Configuration: Decodable, Sendable {
        var delayMilliseconds: Int
        var body: String
        /// When set, requests are counted under this key (``arrivals(_:)``): a test waits for its
        /// request to be in flight instead of sleeping for a guessed time.
        var arrivalKey: String?
    }

    private static let arrivalCounts = NIOLockedValueBox<[String: Int]>([:])

    /// How many requests the slow backends configured with `arrivalKey` have received.
    static func arrivals(_ key: String) -> Int {
        Self.arrivalCounts.withLockedValue { $0[key] ?? 0 }
    }

    /// Waits (bounded, polling) until `arrivals(key)` reaches `count`; false if it never does.
    static func waitForArrivals(_ key: String, count: Int = 1, seconds: Double = 15) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Self.arrivals(key) < count {
            guard Date() < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
        SlowBackend(
            delay: .milliseconds(Int64(configuration.delayMilliseconds)),
            body: configuration.body,
            arrivalKey: configuration.arrivalKey
        )
    }

    struct SlowBackend: Backend {
        let delay: TimeAmount
        let body: String
        let arrivalKey: String?

        func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
            if let key = self.arrivalKey {
                SlowBackendPlugin.arrivalCounts.withLockedValue { $0[key, default: 0] += 1 }
            }
            let body = self.body
            request.eventLoop.assumeIsolated().scheduleTask(in: self.delay) {
                response.respond(
                    GatewayResponse(
                        status: .ok,
                        headers: ["content-type": "text/plain"],
                        body: ByteBuffer(string: body)
                    )
                )
            }
            return DiscardingBodyReceiver.shared
        }
    }
}

/// A filter that can refuse, tag, or decide later, to exercise the filter role end to end.
enum TaggingFilterPlugin: FilterPlugin {
    static let id = "test-tag"

    struct Configuration: Decodable, Sendable {
        /// Value of the `x-tag` response header this filter adds.
        var tag: String
        /// Refuse requests carrying `x-block` with 403.
        var blockHeader: Bool?
        /// Decide asynchronously (after a short delay) instead of synchronously.
        var suspendMilliseconds: Int?
    }

    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter {
        TaggingFilter(configuration: configuration)
    }

    struct TaggingFilter: Filter {
        let configuration: Configuration

        func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome {
            if self.configuration.blockHeader == true, request.head.headers.contains(name: "x-block") {
                return .respond(
                    GatewayResponse(
                        status: .forbidden,
                        body: ByteBuffer(string: "blocked by \(self.configuration.tag)")
                    )
                )
            }
            guard let delay = self.configuration.suspendMilliseconds else { return .proceed }
            var modified = request
            modified.head.headers.add(name: "x-seen-by", value: self.configuration.tag)
            let changed = modified
            let promise = request.eventLoop.makePromise(of: FilterResolution.self)
            request.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
                promise.succeed(.proceed(changed))
            }
            return .suspend(promise.futureResult)
        }

        func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest) {
            head.headers.add(name: "x-tag", value: self.configuration.tag)
            if let seen = request.head.headers.first(name: "x-seen-by") {
                head.headers.add(name: "x-request-was-seen-by", value: seen)
            }
        }
    }
}

/// The binary's plugins plus the test-only ones.
/// A compiled-in filter that holds the request body (``Filter/requestBufferLimit(for:)``),
/// upper-cases it, and copies the request trailer `X-Sum` into the header `X-Trailer-Sum`.
enum UpperCaseBodyFilterPlugin: FilterPlugin {
    static let id = "test-upper-body"

    struct Configuration: Decodable, Sendable {
        /// The most body bytes the filter holds.
        var limit: Int
    }

    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter {
        UpperCaseBodyFilter(limit: configuration.limit)
    }

    struct UpperCaseBodyFilter: Filter {
        let limit: Int

        func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome { .proceed }

        func requestBufferLimit(for request: GatewayRequest) -> Int? { self.limit }

        func filterBufferedRequest(_ request: inout GatewayRequest) -> FilterOutcome {
            let text = request.heldBody.map { String(buffer: $0) } ?? ""
            request.heldBody = ByteBuffer(string: text.uppercased())
            if let sum = request.heldTrailers?.first(name: "x-sum") {
                request.head.headers.add(name: "x-trailer-sum", value: sum)
            }
            return .proceed
        }
    }
}

var testRegistry: PluginRegistry {
    var registry = gatewayRegistry
    registry.register(SlowBackendPlugin.self)
    registry.register(TaggingFilterPlugin.self)
    registry.register(UpperCaseBodyFilterPlugin.self)
    return registry
}
