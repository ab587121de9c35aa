import EthicalGatewayTesting
import Foundation

/// The example http-wasm guests, built once per test run by `scripts/build-wasm-examples.sh`
/// into a temporary folder (built modules are never committed, so a fresh clone works).
enum WasmGuests {
    private static let build = Task<URL, any Error> {
        let directory = try TemporaryDirectory(prefix: "wasm-guests")
        let script = repositoryRoot.appendingPathComponent("scripts/build-wasm-examples.sh").path
        let output = try await ProcessRunner.run("bash", [script, directory.url.path], timeout: 120)
        guard output.exitCode == 0 else {
            throw ProcessRunnerError(message: "building the wasm guests failed: \(output.standardError)")
        }
        return directory.url
    }

    /// The folder holding `<name>.wasm` for every example guest.
    static func folder() async throws -> URL { try await self.build.value }

    /// Copies the named guests into `directory/wasm/`, where the test configs point.
    static func install(_ names: [String], into directory: TemporaryDirectory, from folder: URL) throws {
        let target = directory.url.appendingPathComponent("wasm")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in names {
            try FileManager.default.copyItem(
                at: folder.appendingPathComponent("\(name).wasm"),
                to: target.appendingPathComponent("\(name).wasm")
            )
        }
    }
}
