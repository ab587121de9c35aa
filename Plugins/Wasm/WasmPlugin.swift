public import EthicalGateway
import Foundation

/// The `wasm` filter: a WebAssembly guest speaking the http-wasm handler ABI
/// (<https://http-wasm.io/http-handler-abi/>), run by WasmKit's interpreter in a sandbox.
///
/// Guests written for other http-wasm hosts (Traefik, Dapr) run unchanged as long as they use
/// only the `http_handler` imports (no WASI). See docs/wasm-plugins.md.
///
/// ```json
/// "filters": {
///   "rewrite": { "plugin": "wasm", "config": { "module": "header-rewrite.wasm", "guestConfig": "..." } }
/// }
/// ```
public enum WasmPlugin: FilterPlugin {
    public static let id = "wasm"

    public typealias Configuration = WasmFilterConfiguration

    /// Reads and compiles the module once, and instantiates it once to check its imports,
    /// exports, memory and initializer; per-loop instances are made on first use.
    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter {
        let url = context.resolvePath(configuration.module)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw context.error("module", "cannot read the WebAssembly module \(url.path)")
        }
        let module: WasmGuestModule
        let probe: WasmGuest
        do {
            module = try WasmGuestModule(
                name: context.name,
                bytes: Array(data),
                guestConfig: configuration.guestConfig,
                limits: configuration.limits,
                logger: context.logger
            )
            probe = try WasmGuest(module: module)
        } catch {
            throw context.error("module", "\(url.lastPathComponent) \(Self.sentence(error))")
        }
        return WasmFilter(
            name: context.name,
            module: module,
            initialFeatures: probe.features,
            eventLoopGroup: context.eventLoopGroup
        )
    }

    private static func sentence(_ error: any Error) -> String {
        if let error = error as? WasmModuleError { return error.description }
        return "cannot run: \(error)"
    }
}
