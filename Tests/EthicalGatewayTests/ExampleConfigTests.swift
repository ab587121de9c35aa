import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Example configurations")
struct ExampleConfigTests {
    /// Every gateway config in `config/` and `config/examples/`.
    static var exampleFiles: [URL] {
        let folders = ["config", "config/examples"].map { repositoryRoot.appendingPathComponent($0) }
        return folders.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? [])
                .filter { $0.pathExtension == "json" && !$0.lastPathComponent.contains("schema") }
        }.sorted { $0.path < $1.path }
    }

    @Test("there are examples to check")
    func examplesExist() {
        #expect(Self.exampleFiles.contains { $0.lastPathComponent == "gateway.json" })
    }

    @Test("every example passes the gateway's own validation", arguments: Self.exampleFiles)
    func decoderAccepts(file: URL) async throws {
        // The wasm example names modules the build makes (never committed): validate a copy
        // beside freshly built ones.
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        var checked = file
        if file.lastPathComponent == "wasm.json" {
            try WasmGuests.install(["header-rewrite"], into: scratch, from: try await WasmGuests.folder())
            checked = scratch.url.appendingPathComponent(file.lastPathComponent)
            try FileManager.default.copyItem(at: file, to: checked)
        }
        let output = try await GatewayProcess.run(["validate", checked.path])
        #expect(output.exitCode == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("OK"))
    }

    @Test("every example validates against the published JSON Schema")
    func schemaAccepts() async throws {
        let script = repositoryRoot.appendingPathComponent("scripts/validate-config-schema.py").path
        let output = try await ProcessRunner.run("python3", [script] + Self.exampleFiles.map(\.path))
        #expect(output.exitCode == 0, "\(output.standardOutput)\(output.standardError)")
    }

    @Test("the schema rejects what the decoder rejects")
    func schemaRejects() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let broken = try directory.write(
            #"{ "listeners": [ { "port": 70000, "extra": 1 } ], "routes": [ { "backend": "x", "match": { "path": "a" } } ], "backends": {} }"#,
            to: "broken.json"
        )
        let script = repositoryRoot.appendingPathComponent("scripts/validate-config-schema.py").path
        let output = try await ProcessRunner.run("python3", [script, broken.path])
        #expect(output.exitCode == 1)
        for path in ["listeners[0].port", "listeners[0]", "routes[0].match.path"] {
            #expect(output.standardOutput.contains(path), "\(output.standardOutput)")
        }
    }
}
