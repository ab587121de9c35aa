import Logging
import WasmKit

/// A guest module compiled once per configuration load, and what every instance of it shares.
///
/// The module and engine are immutable and shared across event loops; instances are made from
/// them on each loop (``WasmGuestPool``).
final class WasmGuestModule: Sendable {
    /// The filter's name in the configuration, for log lines.
    let name: String
    let module: Module
    let engine: Engine
    let guestConfig: [UInt8]
    let limits: WasmLimits
    let logger: Logger

    /// Parses and validates `bytes`; throws a sentence for the config error when they are not a
    /// module or lack what the ABI needs.
    init(name: String, bytes: [UInt8], guestConfig: String, limits: WasmLimits, logger: Logger) throws {
        self.name = name
        self.guestConfig = Array(guestConfig.utf8)
        self.limits = limits
        self.logger = logger
        // Eager translation: a function that does not validate fails the configuration, not a request.
        self.engine = Engine(configuration: EngineConfiguration(compilationMode: .eager, fuelMetering: true))
        do {
            self.module = try parseWasm(bytes: bytes)
        } catch {
            throw WasmModuleError("is not a valid WebAssembly module: \(error)")
        }
        for entry in self.module.imports {
            guard entry.module == HTTPWasmABI.moduleName,
                WasmGuest.hostFunctions.contains(where: { $0.0 == entry.name })
            else {
                throw WasmModuleError(
                    "imports \(entry.module).\(entry.name), which this host does not provide (only the http_handler functions of the http-wasm ABI; no WASI)"
                )
            }
        }
        let exports = Set(self.module.exports.map(\.name))
        for required in [HTTPWasmABI.handleRequest, HTTPWasmABI.handleResponse, HTTPWasmABI.memory]
        where !exports.contains(required) {
            throw WasmModuleError("does not export \(required), which the http-wasm handler ABI requires")
        }
    }
}

/// Why a module cannot be loaded, as a sentence about the module.
struct WasmModuleError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
