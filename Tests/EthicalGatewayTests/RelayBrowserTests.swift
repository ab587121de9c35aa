import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The relay's browser client (`Resources/fluxer-relay.js`) and the default config's demo page
/// (`config/www/relay-demo.html`): what is served, and the page in real headless Chromium, driven
/// through the Chrome DevTools Protocol by `Fixtures/cdp_fixture.py`.
@Suite("Fluxer Relay: browser client and demo page", .timeLimit(.minutes(5)))
struct RelayBrowserTests {
    static let scriptFile = repositoryRoot.appendingPathComponent("Plugins/FluxerRelay/Resources/fluxer-relay.js")
    static let embeddedFile = repositoryRoot.appendingPathComponent("Plugins/FluxerRelay/ClientScript.swift")
    static let publishCommand = #"""
        curl -k -H "Authorization: Bearer $(ethical-gateway dev-token --sub alice --scope relay:admin)" -d '{"channel":"demo:news","data":{"text":"hello"}}' https://127.0.0.1:8443/relay/api/publish
        """#

    @Test("ClientScript.swift is what scripts/embed-relay-client.sh makes of fluxer-relay.js, and the relay serves it")
    func clientScriptMatchesSource() async throws {
        let script = try String(contentsOf: Self.scriptFile, encoding: .utf8)

        // Regenerate into a scratch copy of the two files the script reads, then compare.
        let scratch = try TemporaryDirectory(prefix: "embed-relay-client")
        defer { scratch.remove() }
        let generator = try String(
            contentsOf: repositoryRoot.appendingPathComponent("scripts/embed-relay-client.sh"),
            encoding: .utf8
        )
        try scratch.write(generator, to: "scripts/embed-relay-client.sh")
        try scratch.write(script, to: "Plugins/FluxerRelay/Resources/fluxer-relay.js")
        let output = try await ProcessRunner.run(
            "bash",
            [scratch.url.appendingPathComponent("scripts/embed-relay-client.sh").path]
        )
        #expect(output.exitCode == 0, "\(output.standardError)")
        let regenerated = try String(
            contentsOf: scratch.url.appendingPathComponent("Plugins/FluxerRelay/ClientScript.swift"),
            encoding: .utf8
        )
        let checkedIn = try String(contentsOf: Self.embeddedFile, encoding: .utf8)
        #expect(
            Self.firstDifference(checkedIn, regenerated) == nil,
            "Plugins/FluxerRelay/ClientScript.swift is stale: run scripts/embed-relay-client.sh after editing fluxer-relay.js"
        )

        // What the default config serves at /relay/fluxer-relay.js (a Swift multi-line string
        // ends before the file's last newline).
        try await Self.withDefaultGateway { gateway in
            let served = try await Curl.request("https://127.0.0.1:\(gateway.port("https"))/relay/fluxer-relay.js")
            #expect(served.status == 200)
            #expect(served.header("content-type")?.contains("javascript") == true, "\(served.headers)")
            #expect(
                Self.firstDifference(served.bodyText + "\n", script) == nil,
                "the served client differs from Resources/fluxer-relay.js"
            )
        }
    }

    @Test("the default config serves the demo page, linked from its home page, with the curl command to publish")
    func demoPageServed() async throws {
        try await Self.withDefaultGateway { gateway in
            let origin = "https://127.0.0.1:\(gateway.port("https"))"
            let page = try await Curl.request("\(origin)/relay-demo.html")
            #expect(page.status == 200)
            #expect(page.header("content-type")?.hasPrefix("text/html") == true)
            #expect(page.bodyText.contains(#"<script src="/relay/fluxer-relay.js"></script>"#))
            #expect(page.bodyText.contains(#""/relay/connection/websocket""#))
            #expect(page.bodyText.contains(#"subscribe("demo:news""#))
            #expect(page.bodyText.contains(Self.publishCommand), "the page must show the exact publish command")
            let home = try await Curl.request("\(origin)/")
            #expect(home.bodyText.contains(#"href="/relay-demo.html""#))
        }
    }

    @Test(
        "the demo page in Chromium: publications appear live and in order, pings are answered, and those published while it was disconnected are recovered, none lost or twice",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        )
    )
    func demoPageInChromium() async throws {
        // Pings every second, so the page must answer several during the test.
        try await Self.withDefaultGateway(pingIntervalSeconds: 1) { gateway in
            let origin = "https://127.0.0.1:\(gateway.port("https"))"
            let token = try await Self.devToken(gateway, scope: "relay:admin")
            let browser = try HeadlessChromium(opening: "\(origin)/relay-demo.html")
            defer { browser.stop() }

            let subscribed = """
                window.relay !== undefined && relay.state === "connected"
                    && relay.subscriptions["demo:news"] !== undefined
                    && relay.subscriptions["demo:news"].state === "subscribed"
                """
            _ = try await browser.waitFor(subscribed)
            // Count the server's pings (empty messages) the client reads.
            _ = try await browser.evaluate(
                """
                (() => {
                    window.pingsSeen = 0;
                    const dispatch = relay._dispatch;
                    relay._dispatch = function (message) {
                        if (!message.id && !message.push) window.pingsSeen++;
                        return dispatch.call(this, message);
                    };
                    return true;
                })()
                """
            )

            for (offset, text) in ["one", "two", "three"].enumerated() {
                #expect(try await Self.publish(origin, token: token, text: text) == offset + 1)
            }
            var shown = try await Self.publications(in: browser, atLeast: 3)
            #expect(shown.map(\.offset) == [1, 2, 3])
            #expect(shown.map(\.text) == ["one", "two", "three"])

            // Three pings answered on the first connection (an unanswered one closes it with 3012).
            _ = try await browser.waitFor("window.pingsSeen >= 3")
            #expect(try await browser.evaluate("relay.state") as? String == "connected")
            let lastClose = try await Self.stateAttribute(browser, "lastClose") ?? "none"
            #expect(
                try await Self.stateAttribute(browser, "connects") == "1",
                "reconnected; last close code: \(lastClose)"
            )

            // Drop the socket. The reconnect waits (a 10-minute backoff) until the three are
            // published, then the test ends the wait the way the backoff timer would; every state
            // change is logged, so a failure says what the page went through.
            _ = try await browser.evaluate(
                """
                (() => {
                    window.stateLog = [];
                    const onState = relay.options.onState;
                    relay.options.onState = function (state, detail) {
                        window.stateLog.push({ state: state, code: detail.code, reason: detail.reason, delay: detail.delay });
                        return onState.call(this, state, detail);
                    };
                    relay.options.minReconnectDelay = relay.options.maxReconnectDelay = 600000;
                    relay._ws.close();
                    return true;
                })()
                """
            )
            let pageState =
                #"JSON.stringify({ log: window.stateLog, state: relay.state, socket: relay._ws && relay._ws.readyState })"#
            _ = try await browser.waitFor(
                #"document.getElementById("state").dataset.state === "connecting""#,
                diagnostics: pageState
            )
            for (offset, text) in ["four", "five", "six"].enumerated() {
                #expect(try await Self.publish(origin, token: token, text: text) == offset + 4)
            }
            let stateAfterPublishing = String(describing: try await browser.evaluate(pageState) ?? "")
            #expect(stateAfterPublishing.contains(#""state":"connecting""#), "\(stateAfterPublishing)")
            _ = try await browser.evaluate(
                "relay.options.minReconnectDelay = 500; clearTimeout(relay._reconnectTimer); relay._open(); true"
            )
            shown = try await Self.publications(in: browser, atLeast: 6)
            #expect(shown.map(\.offset) == [1, 2, 3, 4, 5, 6])
            #expect(shown.map(\.text) == ["one", "two", "three", "four", "five", "six"])
            #expect(try await Self.stateAttribute(browser, "connects") == "2")
            #expect(try await Self.stateAttribute(browser, "recovered") == "3")

            // Live again after the recovery; nothing arrived twice.
            #expect(try await Self.publish(origin, token: token, text: "seven") == 7)
            shown = try await Self.publications(in: browser, atLeast: 7)
            #expect(shown.map(\.offset) == Array(1...7))
            #expect(try await browser.evaluate(#"relay.subscriptions["demo:news"].offset"#) as? Int == 7)
        }
    }

    @Test(
        "fluxer-relay.js in Chromium against a scripted server: batched frames, expiry and 109, unsubscribe pushes, timeouts",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        )
    )
    func clientAgainstScriptedServer() async throws {
        let client = try String(contentsOf: Self.scriptFile, encoding: .utf8)
        let checks = try String(
            contentsOf: repositoryRoot.appendingPathComponent(
                "Tests/EthicalGatewayTests/Fixtures/relay_client_checks.js"
            ),
            encoding: .utf8
        )
        let browser = try HeadlessChromium(opening: "about:blank")
        defer { browser.stop() }
        let outcome = try await browser.evaluate(client + "\n;\n" + checks)
        #expect(outcome as? String == "ok", "\(String(describing: outcome))")
    }

    // MARK: Helpers

    /// The first line (1-based) where two texts differ, with both versions of it; nil when equal.
    static func firstDifference(_ one: String, _ other: String) -> String? {
        guard one != other else { return nil }
        let lines = (one.components(separatedBy: "\n"), other.components(separatedBy: "\n"))
        let index =
            zip(lines.0, lines.1).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(lines.0.count, lines.1.count)
        let line = { (all: [String]) in index < all.count ? all[index] : "(end of text)" }
        return "line \(index + 1): \(line(lines.0)) | \(line(lines.1))"
    }

    /// A gateway on the repository's default config (`config/gateway.json` and `config/www`), its
    /// listeners moved to an ephemeral port.
    static func withDefaultGateway(
        pingIntervalSeconds: Int? = nil,
        _ body: (LiveGateway) async throws -> Void
    ) async throws {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("config/gateway.json"))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            var backends = config["backends"] as? [String: Any],
            var relay = backends["relay"] as? [String: Any],
            var relayConfig = relay["config"] as? [String: Any]
        else {
            throw ProcessRunnerError(message: "config/gateway.json has no backends.relay.config object")
        }
        config["listeners"] = [["name": "https", "address": "127.0.0.1", "port": 0, "tls": [String: Any]()]]
        config["admin"] = ["address": "127.0.0.1", "port": 0]
        if let pingIntervalSeconds {
            relayConfig["pingIntervalSeconds"] = pingIntervalSeconds
            // Room for a loaded machine: a late pong closes the connection with 3012.
            relayConfig["pongTimeoutSeconds"] = 5
        }
        relay["config"] = relayConfig
        backends["relay"] = relay
        config["backends"] = backends
        let json = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)

        var files: [String: String] = [:]
        let site = repositoryRoot.appendingPathComponent("config/www")
        for name in try FileManager.default.contentsOfDirectory(atPath: site.path) {
            files["www/\(name)"] = try String(contentsOf: site.appendingPathComponent(name), encoding: .utf8)
        }
        try await LiveGateway.with(config: json, files: files, registry: gatewayRegistry, body)
    }

    /// A token from the config's development issuer, minted by the real binary as the demo page says.
    static func devToken(_ gateway: LiveGateway, scope: String) async throws -> String {
        let output = try await GatewayProcess.run([
            "dev-token", "--config", gateway.directory.url.appendingPathComponent("gateway.json").path, "--sub",
            "alice", "--scope", scope,
        ])
        guard output.exitCode == 0 else {
            throw ProcessRunnerError(message: "dev-token failed: \(output.standardError)")
        }
        return output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Publishes `{"text": text}` to `demo:news` the way the demo page shows; returns the offset.
    static func publish(_ origin: String, token: String, text: String) async throws -> Int? {
        let response = try await Curl.request(
            "\(origin)/relay/api/publish",
            ["-H", "Authorization: Bearer \(token)", "-d", #"{"channel":"demo:news","data":{"text":"\#(text)"}}"#]
        )
        let body = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        #expect(response.status == 200, "\(response.bodyText)")
        return (body?["result"] as? [String: Any])?["offset"] as? Int
    }

    /// The page's list of publications (offset and text), once it holds at least `count`.
    static func publications(
        in browser: HeadlessChromium,
        atLeast count: Int
    ) async throws -> [(
        offset: Int, text: String
    )] {
        let value = try await browser.waitFor(
            """
            (() => {
                const items = Array.from(document.querySelectorAll("#publications li"),
                    item => [Number(item.dataset.offset), item.dataset.text]);
                return items.length >= \(count) ? items : null;
            })()
            """
        )
        let items = try #require(value as? [[Any]], "\(String(describing: value))")
        return items.map { (offset: $0.first as? Int ?? -1, text: $0.last as? String ?? "") }
    }

    /// A `data-` attribute of the page's connection state element.
    static func stateAttribute(_ browser: HeadlessChromium, _ name: String) async throws -> String? {
        try await browser.evaluate(#"document.getElementById("state").dataset.\#(name) ?? null"#) as? String
    }
}

/// Headless Chromium on one page, with a temporary profile and a DevTools port it picks itself;
/// always stopped by its PID.
final class HeadlessChromium: Sendable {
    /// The browser, when installed.
    static let executable: String? = try? ProcessRunner.locate("chromium")
    static let fixture = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/cdp_fixture.py")

    private let profile: TemporaryDirectory
    private let process: ChildProcess

    /// Starts the browser on `url`; the test certificate is accepted (`--ignore-certificate-errors`).
    init(opening url: String) throws {
        guard let executable = Self.executable else {
            throw ProcessRunnerError(message: "chromium is not installed")
        }
        self.profile = try TemporaryDirectory(prefix: "chromium-profile")
        self.process = try ChildProcess(
            executable,
            [
                "--headless", "--no-sandbox", "--ignore-certificate-errors", "--remote-debugging-port=0",
                "--user-data-dir=\(self.profile.url.path)", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--disable-crash-reporter",
                "--window-size=1280,1400", url,
            ]
        )
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    func evaluate(_ expression: String) async throws -> Any? {
        try await self.fixture(["evaluate", expression], timeout: 20)
    }

    /// Evaluates `expression` every 100 ms until it is truthy; returns its value. When it never
    /// is, the error carries the value of `diagnostics` (an expression describing the page).
    func waitFor(_ expression: String, seconds: Int = 15, diagnostics: String? = nil) async throws -> Any? {
        do {
            return try await self.fixture(
                ["wait-for", expression, String(seconds)],
                timeout: TimeInterval(seconds + 10)
            )
        } catch let error as ProcessRunnerError {
            guard let diagnostics else { throw error }
            let state = (try? await self.evaluate(diagnostics)).map { String(describing: $0) } ?? "(no answer)"
            throw ProcessRunnerError(message: "\(error.message)\nthe page: \(state)")
        }
    }

    /// Saves a PNG of the page at `path`; returns its size in bytes.
    func screenshot(to path: URL) async throws -> Int {
        try await self.fixture(["screenshot", path.path], timeout: 30) as? Int ?? 0
    }

    private func fixture(_ arguments: [String], timeout: TimeInterval) async throws -> Any? {
        let output = try await ProcessRunner.run(
            "python3",
            [Self.fixture.path, self.profile.url.path] + arguments,
            timeout: timeout
        )
        guard output.exitCode == 0, !output.timedOut else {
            throw ProcessRunnerError(
                message: "cdp_fixture.py \(arguments.joined(separator: " ")): \(output.standardError)"
            )
        }
        return try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8), options: .fragmentsAllowed)
    }

    /// Stops the browser (SIGTERM, then SIGKILL) and removes its profile.
    func stop() {
        self.process.stop()
        self.profile.remove()
    }
}
