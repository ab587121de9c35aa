import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The admin dashboard in headless Chromium against a running gateway with traffic.
@Suite("Admin dashboard", .timeLimit(.minutes(5)))
struct DashboardTests {
    @Test(
        "the routes, listeners, backends and relay appear, and the live numbers change with traffic (screenshot saved)",
        .enabled(if: HeadlessChromium.executable != nil)
    )
    func liveInChromium() async throws {
        let upstream = try await TestUpstream(name: "app") { _ in .text(status: 200, headers: [], body: "ok") }
        let config = ReloadConfig.json(
            extraRoutes: #", { "name": "app", "match": { "pathPrefix": "/app" }, "backend": "app" }"#,
            extraBackends: """
                , "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstream.port)" } ],
                    "healthCheck": { "path": "/", "intervalSeconds": 0.5 } } }
                """
        )
        try await LiveGateway.with(
            config: config,
            files: ["admin.token": ReloadConfig.adminToken, "api.key": ReloadConfig.apiKey],
            registry: gatewayRegistry
        ) { gateway in
            let adminPort = try #require(gateway.adminPort)
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            // The page as checked in is what the gateway serves.
            let page = try await Curl.request("http://127.0.0.1:\(adminPort)/dashboard")
            let source = try String(
                contentsOf: repositoryRoot.appendingPathComponent("docs/admin-dashboard.html"),
                encoding: .utf8
            )
            #expect(page.bodyText == source, "run scripts/embed-admin-assets.sh after editing docs/admin-dashboard.*")
            #expect(page.header("content-security-policy")?.contains("default-src 'none'") == true)

            let browser = try HeadlessChromium(
                opening: "http://127.0.0.1:\(adminPort)/dashboard#token=\(ReloadConfig.adminToken)"
            )
            defer { browser.stop() }
            let total = #"document.querySelector('#routes tr[data-route="hello"] .total')?.textContent"#
            let diagnostics =
                #"document.getElementById("status").textContent + " | " + document.getElementById("panels").innerText"#
            _ = try await browser.waitFor(#"\#(total) === "0""#, seconds: 30, diagnostics: diagnostics)
            #expect(try await browser.evaluate(#"location.hash"#) as? String == "", "the token leaves the address bar")
            #expect(
                try await browser.evaluate(#"!!document.querySelector('#listeners tr[data-listener="http"]')"#) as? Bool
                    == true
            )
            #expect(
                try await browser.evaluate(#"!!document.querySelector('#relay tr[data-relay="relay"]')"#) as? Bool
                    == true
            )
            _ = try await browser.waitFor(
                #"document.querySelector('#backends tr[data-backend="app"] .healthy')?.dataset.upstream === "http://127.0.0.1:\#(upstream.port)""#,
                seconds: 30,
                diagnostics: diagnostics
            )

            for _ in 0..<5 { #expect(try await Curl.request("\(base)/hello").status == 200) }
            for _ in 0..<3 { #expect(try await Curl.request("\(base)/app/x").status == 200) }
            _ = try await browser.waitFor(#"\#(total) === "5""#, seconds: 30, diagnostics: diagnostics)
            _ = try await browser.waitFor(
                #"document.querySelector('#routes tr[data-route="app"] .total')?.textContent === "3""#,
                seconds: 30,
                diagnostics: diagnostics
            )
            let p99 =
                try await browser.evaluate(
                    #"document.querySelector('#routes tr[data-route="hello"] .p99').textContent"#
                ) as? String
            #expect(p99?.hasSuffix("ms") == true || p99?.hasSuffix(" s") == true, "\(p99 ?? "nil")")

            let artifacts = repositoryRoot.appendingPathComponent(".build/test-artifacts")
            try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
            let screenshot = artifacts.appendingPathComponent("dashboard.png")
            #expect(try await browser.screenshot(to: screenshot) > 1000)
            let png = try Data(contentsOf: screenshot)
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        }
        await upstream.stop()
    }
}
