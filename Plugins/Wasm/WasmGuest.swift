import Logging
import NIOCore
@_spi(Fuzzing) import WasmKit

/// One instance of a guest module: its store, memory and exports, and the request it serves.
///
/// Confined to one event loop (an instance is never shared across loops, see ``WasmGuestPool``)
/// and to one request at a time.
final class WasmGuest {
    let module: WasmGuestModule
    let store: Store
    private(set) var memory: Memory?
    private var handleRequestFunction: Function?
    private var handleResponseFunction: Function?
    /// The request being served; `nil` while the instance initializes or sits in the pool.
    var exchange: WasmExchange?
    /// Features the guest enabled for every request (`enable_features` called outside a request).
    var features: HTTPWasmFeatures = []
    /// The logger of the request being served, or the plugin's while the instance initializes.
    /// Built when the guest logs, not per call: a request's logger carries metadata that costs
    /// string building, which guests that never log should not pay.
    var logger: Logger { self.exchange?.request.logger ?? self.module.logger }

    /// Instantiates the module, checks its exports and runs its initializer.
    init(module: WasmGuestModule) throws {
        self.module = module
        self.store = Store(engine: module.engine)
        self.store.resourceLimiter = GuestMemoryLimiter(pages: module.limits.memoryPages)
        let imports = self.hostImports()
        let instance: Instance
        do {
            instance = try module.module.instantiate(store: self.store, imports: imports)
        } catch let error as WasmGuestError where error.isLimit {
            // Instantiation allocates the initial memory through the limiter.
            throw WasmGuestError.instantiation(
                "the module's memory starts larger than its limit of \(module.limits.memoryPages) pages"
            )
        } catch {
            throw WasmGuestError.instantiation("\(error)")
        }
        guard case .memory(let memory) = instance.export(HTTPWasmABI.memory) else {
            throw WasmGuestError.instantiation("the module exports no memory named \"memory\"")
        }
        guard memory.byteCount <= module.limits.memoryPages * 65536 else {
            throw WasmGuestError.instantiation(
                "the module's memory starts larger than its limit of \(module.limits.memoryPages) pages"
            )
        }
        guard case .function(let handleRequest) = instance.export(HTTPWasmABI.handleRequest),
            handleRequest.type == FunctionType(parameters: [], results: [.i64])
        else {
            throw WasmGuestError.instantiation("the module exports no function handle_request: () -> i64")
        }
        guard case .function(let handleResponse) = instance.export(HTTPWasmABI.handleResponse),
            handleResponse.type == FunctionType(parameters: [.i32, .i32], results: [])
        else {
            throw WasmGuestError.instantiation("the module exports no function handle_response: (i32, i32) -> ()")
        }
        self.memory = memory
        self.handleRequestFunction = handleRequest
        self.handleResponseFunction = handleResponse
        for name in [HTTPWasmABI.initialize, HTTPWasmABI.start] {
            guard case .function(let initializer) = instance.export(name) else { continue }
            self.store.fuel = Fuel(remaining: module.limits.fuelPerRequest)
            do {
                try initializer.invoke([])
            } catch {
                let reason = Self.guestError(error, budget: module.limits.fuelPerRequest)
                throw WasmGuestError.instantiation("\(name) failed: \(reason)")
            }
            break
        }
    }

    /// Calls `handle_request` for `exchange`; returns whether to call the next handler.
    func handleRequest(_ exchange: WasmExchange) throws -> Bool {
        let results = try self.run(exchange) { try self.handleRequestFunction!.invoke([]) }
        guard case .i64(let ctxNext) = results.first else {
            throw WasmGuestError.abi("handle_request returned no i64")
        }
        exchange.guestContext = UInt32(truncatingIfNeeded: ctxNext >> 32)
        return ctxNext & 1 == 1
    }

    /// Calls `handle_response` for `exchange` (in its response phase).
    func handleResponse(_ exchange: WasmExchange, isError: Bool) throws {
        _ = try self.run(exchange) {
            try self.handleResponseFunction!.invoke([.i32(exchange.guestContext), .i32(isError ? 1 : 0)])
        }
    }

    /// Runs a guest call for `exchange` within its fuel and wall-time limits.
    private func run(_ exchange: WasmExchange, _ call: () throws -> [Value]) throws -> [Value] {
        self.exchange = exchange
        self.store.fuel = Fuel(remaining: exchange.fuelLeft)
        let started = NIODeadline.now()
        exchange.deadline = started + exchange.wallTimeLeft
        defer {
            exchange.wallTimeLeft = exchange.wallTimeLeft - (NIODeadline.now() - started)
            exchange.fuelLeft = self.store.fuel?.remaining ?? 0
            self.exchange = nil
        }
        let results: [Value]
        do {
            results = try call()
        } catch {
            throw Self.guestError(error, budget: self.module.limits.fuelPerRequest)
        }
        try self.checkWallTime(exchange)
        return results
    }

    /// Throws when the request's wall time in the guest is up.
    func checkWallTime(_ exchange: WasmExchange) throws {
        if NIODeadline.now() > exchange.deadline {
            throw WasmGuestError.wallTime(milliseconds: self.module.limits.wallTimeMilliseconds)
        }
    }

    /// The reason behind an error out of a guest call. Out-of-fuel is a trap whose reason
    /// WasmKit keeps to itself; its description is the only public sign of it.
    private static func guestError(_ error: any Error, budget: UInt64) -> WasmGuestError {
        if let error = error as? WasmGuestError { return error }
        let text = "\(error)"
        if error is Trap, text.contains("out of fuel") { return .outOfFuel(budget) }
        // The first line: WasmKit appends a backtrace below it.
        return .trap(text.split(separator: "\n").first.map(String.init) ?? text)
    }
}

/// Refuses memory growth past the configured pages by failing the call (a refused `memory.grow`
/// that returns -1 would let a careless guest write on through a null allocation).
final class GuestMemoryLimiter: ResourceLimiter {
    let pages: Int

    init(pages: Int) { self.pages = pages }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired <= self.pages * 65536 else { throw WasmGuestError.memoryLimit(pages: self.pages) }
        return true
    }

    func limitTableGrowth(to desired: Int) throws -> Bool { desired <= 65536 }
}
