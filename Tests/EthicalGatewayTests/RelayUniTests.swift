import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// Server-side subscriptions (the token's channels claim in a namespace with
/// `serverSideSubscriptions`, recovered through the connect's `subs`) and the uni-directional
/// transports (`uni_sse`, `uni_http_stream`), with independent clients: curl, centrifuge-python
/// in both formats, and a browser `EventSource` in headless Chromium.
@Suite("Fluxer Relay: server-side subscriptions and uni-directional transports", .timeLimit(.minutes(5)))
struct RelayUniTests {
    /// `news` subscribes server-side from the claim; `chat` does not.
    static let namespaces = """
        "namespaces": {
          "default": { "subscribe": "authenticated" },
          "news": { "subscribe": "claim", "historySize": 100, "serverSideSubscriptions": true },
          "chat": { "subscribe": "authenticated", "historySize": 100 },
          "flood": { "subscribe": "claim", "publish": "any", "serverSideSubscriptions": true,
                     "slowConsumer": "disconnect" },
          "refill": { "subscribe": "claim", "publish": "any", "serverSideSubscriptions": true,
                      "historySize": 5000, "slowConsumer": "dropOldest" }
        }
        """

    static func origin(_ gateway: LiveGateway) -> String { "https://127.0.0.1:\(gateway.port("https"))" }

    /// Publishes `{"n": n}` to `channel` through the HTTP API; returns the offset.
    static func publish(_ gateway: LiveGateway, _ channel: String, _ n: Int) async throws -> Int? {
        let response = try await Curl.request(
            "\(Self.origin(gateway))/relay/api/publish",
            ["-H", "X-API-Key: \(RelayGateway.apiKey)", "-d", #"{"channel":"\#(channel)","data":{"n":\#(n)}}"#]
        )
        #expect(response.status == 200, "\(response.bodyText)")
        let body = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        return (body?["result"] as? [String: Any])?["offset"] as? Int
    }

    /// Disconnects `user`'s connections through the HTTP API with `code`.
    static func disconnect(_ gateway: LiveGateway, user: String, code: Int, reason: String) async throws {
        let response = try await Curl.request(
            "\(Self.origin(gateway))/relay/api/disconnect",
            [
                "-H", "X-API-Key: \(RelayGateway.apiKey)", "-d",
                #"{"user":"\#(user)","disconnect":{"code":\#(code),"reason":"\#(reason)"}}"#,
            ]
        )
        #expect(response.status == 200 && !response.bodyText.contains("error"), "\(response.bodyText)")
    }

    static func json(_ text: String?) throws -> [String: Any] {
        let text = try #require(text, "the stream ended")
        return try #require(
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            "not a JSON object: \(text)"
        )
    }

    /// The next push a stream carries, past the server's pings (`{}`): an SSE event's data, or
    /// an HTTP-streaming line.
    static func push(_ stream: CurlStream, sse: Bool) async throws -> [String: Any] {
        while true {
            let line = sse ? try await stream.nextLine(startingWith: "data: ") : try await stream.nextLine()
            if line?.isEmpty == true { continue }
            let push = try Self.json(line)
            if !push.isEmpty { return push }
        }
    }

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The connect request as JSON text.
    static func connectRequest(token: String, subs: [String: Any]? = nil) throws -> String {
        var request: [String: Any] = ["token": token, "name": "tests"]
        if let subs { request["subs"] = subs }
        return String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
    }

    /// The number of the publication a push or a recovered publication carries.
    static func number(_ publication: Any?) -> Int? {
        ((publication as? [String: Any])?["data"] as? [String: Any])?["n"] as? Int
    }

    @Test(
        "uni_sse with curl over HTTP/1.1: the connect push with the claim's channel, publications as events, a disconnect push; GET cf_connect and POST recover what was missed; the server API's subscribe adds a channel"
    )
    func sseWithCurl() async throws {
        try await RelayGateway.with(relay: Self.namespaces) { gateway in
            let token = try RelayTokens.mint("sam", channels: ["news:alpha", "chat:*"])
            let url = "\(Self.origin(gateway))/relay/connection/uni_sse"
            let stream = try CurlStream(
                "\(url)?cf_connect=\(Self.percentEncoded(try Self.connectRequest(token: token)))",
                ["--http1.1", "-i"]
            )
            defer { stream.stop() }
            let status = try #require(try await stream.nextLine())
            #expect(status.hasPrefix("HTTP/1.1 200"), "\(status)")
            var headers: [String] = []
            while let line = try await stream.nextLine(), line != "\r" { headers.append(line.lowercased()) }
            #expect(headers.contains { $0.hasPrefix("content-type: text/event-stream") }, "\(headers)")
            #expect(headers.contains { $0.hasPrefix("cache-control: private, no-cache") }, "\(headers)")

            let connect = try #require(
                try await Self.push(stream, sse: true)["connect"] as? [String: Any]
            )
            #expect(connect["client"] as? String != nil)
            #expect(connect["pong"] == nil, "a uni-directional client does not answer pings")
            let subs = try #require(connect["subs"] as? [String: Any], "\(connect)")
            #expect(Array(subs.keys) == ["news:alpha"], "prefix grants and other namespaces are not server-side")
            let alpha = try #require(subs["news:alpha"] as? [String: Any])
            #expect(alpha["recoverable"] as? Bool == true)
            let epoch = try #require(alpha["epoch"] as? String)

            for n in 1...2 { #expect(try await Self.publish(gateway, "news:alpha", n) == n) }
            for n in 1...2 {
                let push = try await Self.push(stream, sse: true)
                #expect(push["channel"] as? String == "news:alpha", "\(push)")
                let publication = try #require(push["pub"] as? [String: Any], "\(push)")
                #expect(Self.number(publication) == n)
                #expect(publication["offset"] as? Int == n)
            }
            let stats = try await RelayGateway.waitForStats(gateway) { $0["uniConnections"] as? Int == 1 }
            #expect(stats["uniConnections"] as? Int == 1, "\(stats)")
            #expect(stats["subscriptions"] as? Int == 1, "\(stats)")

            // The server ends the stream with a disconnect push, then the response ends.
            try await Self.disconnect(gateway, user: "sam", code: 3011, reason: "force reconnect")
            let disconnect = try await Self.push(stream, sse: true)
            let body = try #require(disconnect["disconnect"] as? [String: Any], "\(disconnect)")
            #expect(body["code"] as? Int == 3011)
            #expect(body["reason"] as? String == "force reconnect")
            #expect(try await stream.nextLine(startingWith: "data: ") == nil, "the response ends")
            _ = try await RelayGateway.waitForStats(gateway) { $0["uniConnections"] as? Int == 0 }

            // Missed while away, recovered through a POST with the connect's subs.
            for n in 3...4 { #expect(try await Self.publish(gateway, "news:alpha", n) == n) }
            let recovering = try CurlStream(
                url,
                [
                    "-H", "content-type: application/json", "--data-binary",
                    try Self.connectRequest(
                        token: token,
                        subs: ["news:alpha": ["recover": true, "offset": 2, "epoch": epoch]]
                    ),
                ]
            )
            defer { recovering.stop() }
            let again = try #require(
                try await Self.push(recovering, sse: true)["connect"] as? [String: Any]
            )
            let recovered = try #require((again["subs"] as? [String: Any])?["news:alpha"] as? [String: Any])
            #expect(recovered["was_recovering"] as? Bool == true)
            #expect(recovered["recovered"] as? Bool == true)
            #expect((recovered["publications"] as? [Any])?.map(Self.number) == [3, 4], "\(recovered)")
            #expect(recovered["offset"] as? Int == 4)
            #expect(try await Self.publish(gateway, "news:alpha", 5) == 5)
            let live = try await Self.push(recovering, sse: true)
            #expect(Self.number(live["pub"]) == 5, "\(live)")

            // The server API's subscribe adds a channel to the open stream: a subscribe push first.
            let subscribed = try await Curl.request(
                "\(Self.origin(gateway))/relay/api/subscribe",
                ["-H", "X-API-Key: \(RelayGateway.apiKey)", "-d", #"{"user":"sam","channel":"chat:added"}"#]
            )
            #expect(subscribed.bodyText == #"{"result":{}}"# + "\n", "\(subscribed.bodyText)")
            let push = try await Self.push(recovering, sse: true)
            #expect(push["channel"] as? String == "chat:added", "\(push)")
            let position = try #require(push["subscribe"] as? [String: Any], "\(push)")
            #expect(position["recoverable"] as? Bool == true)
            #expect(position["offset"] as? Int == 0)
            #expect(try await Self.publish(gateway, "chat:added", 1) == 1)
            let added = try await Self.push(recovering, sse: true)
            #expect(added["channel"] as? String == "chat:added")
            #expect(Self.number(added["pub"]) == 1, "\(added)")
        }
    }

    @Test(
        "uni_http_stream with curl over HTTP/2: one push per line, recovery, and the relay forgets a client that went away"
    )
    func httpStreamOverHTTP2() async throws {
        try await RelayGateway.with(relay: Self.namespaces) { gateway in
            let token = try RelayTokens.mint("hana", channels: ["news:beta"])
            let url = "\(Self.origin(gateway))/relay/connection/uni_http_stream"
            let stream = try CurlStream(
                url,
                [
                    "--http2", "-i", "-H", "content-type: application/json", "--data-binary",
                    try Self.connectRequest(token: token),
                ]
            )
            let status = try #require(try await stream.nextLine())
            #expect(status.hasPrefix("HTTP/2 200"), "\(status)")
            var headers: [String] = []
            while let line = try await stream.nextLine(), line != "\r" { headers.append(line.lowercased()) }
            #expect(headers.contains { $0.hasPrefix("content-type: application/json") }, "\(headers)")
            let connect = try #require(try await Self.push(stream, sse: false)["connect"] as? [String: Any])
            let beta = try #require((connect["subs"] as? [String: Any])?["news:beta"] as? [String: Any])
            let epoch = try #require(beta["epoch"] as? String)
            for n in 1...3 { #expect(try await Self.publish(gateway, "news:beta", n) == n) }
            for n in 1...3 {
                let push = try await Self.push(stream, sse: false)
                #expect(push["channel"] as? String == "news:beta")
                #expect(Self.number(push["pub"]) == n, "\(push)")
            }
            // The client goes away without a word: its connection and subscription are released.
            stream.stop()
            let stats = try await RelayGateway.waitForStats(gateway, seconds: 30) {
                $0["connections"] as? Int == 0 && $0["subscriptions"] as? Int == 0
            }
            #expect(stats["connections"] as? Int == 0, "\(stats)")
            #expect(stats["subscriptions"] as? Int == 0, "\(stats)")

            for n in 4...5 { #expect(try await Self.publish(gateway, "news:beta", n) == n) }
            let recovering = try CurlStream(
                url,
                [
                    "--http2", "--data-binary",
                    try Self.connectRequest(
                        token: token,
                        subs: ["news:beta": ["recover": true, "offset": 3, "epoch": epoch]]
                    ),
                ]
            )
            defer { recovering.stop() }
            let again = try #require(try await Self.push(recovering, sse: false)["connect"] as? [String: Any])
            let recovered = try #require((again["subs"] as? [String: Any])?["news:beta"] as? [String: Any])
            #expect(recovered["recovered"] as? Bool == true, "\(recovered)")
            #expect((recovered["publications"] as? [Any])?.map(Self.number) == [4, 5], "\(recovered)")
        }
    }

    @Test(
        "bad uni-directional requests: 405 for the method, 400 naming the field or parameter, a 3500 disconnect push without a token"
    )
    func badRequests() async throws {
        try await RelayGateway.with(relay: Self.namespaces) { gateway in
            let sse = "\(Self.origin(gateway))/relay/connection/uni_sse"
            let httpStream = "\(Self.origin(gateway))/relay/connection/uni_http_stream"
            func problem(_ response: CurlResponse) -> String {
                ((try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any])?["detail"] as? String ?? ""
            }

            let put = try await Curl.request(sse, ["-X", "PUT"])
            #expect(put.status == 405)
            #expect(put.header("content-type")?.hasPrefix("application/problem+json") == true)
            #expect(problem(put).contains("uni_sse takes GET"), "\(put.bodyText)")
            let get = try await Curl.request(httpStream)
            #expect(get.status == 405)
            #expect(problem(get).contains("uni_http_stream takes POST"), "\(get.bodyText)")

            let malformed = try await Curl.request("\(sse)?cf_connect=\(Self.percentEncoded("{\"token\":"))")
            #expect(malformed.status == 400)
            #expect(problem(malformed).contains("the cf_connect query parameter is not JSON"), "\(malformed.bodyText)")
            let wrongType = try await Curl.request(httpStream, ["--data-binary", #"{"token": 5}"#])
            #expect(wrongType.status == 400)
            #expect(problem(wrongType).contains("connect.token must be a string"), "\(wrongType.bodyText)")
            let badSubs = try await Curl.request(
                httpStream,
                ["--data-binary", #"{"subs": {"news:a": {"recover": true, "offset": "two"}}}"#]
            )
            #expect(badSubs.status == 400)
            #expect(problem(badSubs).contains("connect.subs.news:a.offset must be an integer"), "\(badSubs.bodyText)")
            let notObject = try await Curl.request(httpStream, ["--data-binary", "[1]"])
            #expect(notObject.status == 400)
            #expect(problem(notObject).contains("must be a connect request (a JSON object)"), "\(notObject.bodyText)")

            // Well-formed but without a token: the protocol's refusal, as Centrifugo sends it.
            let anonymous = try await Curl.request(httpStream, ["--data-binary", "{}"])
            #expect(anonymous.status == 200)
            #expect(
                anonymous.bodyText == #"{"disconnect":{"code":3500,"reason":"invalid token"}}"# + "\n",
                "\(anonymous.bodyText)"
            )
            let forged = try await Curl.request(
                "\(sse)?cf_connect=\(Self.percentEncoded(#"{"token":"not.a.token"}"#))"
            )
            #expect(forged.status == 200)
            #expect(forged.bodyText.hasPrefix("\r\ndata: {\"disconnect\":{\"code\":3500,"), "\(forged.bodyText)")
        }
    }

    @Test(
        "a uni-directional client cannot refresh: its stream ends with 3005 when the token expires, and an expired token gets 3005 at once"
    )
    func tokenExpiry() async throws {
        try await RelayGateway.with(relay: #""pongTimeoutSeconds": 1, "# + Self.namespaces) { gateway in
            let url = "\(Self.origin(gateway))/relay/connection/uni_http_stream"
            let expired = try await Curl.request(
                url,
                ["--data-binary", try Self.connectRequest(token: try RelayTokens.mint("old", ttl: -120))]
            )
            #expect(expired.status == 200)
            #expect(expired.bodyText.hasPrefix(#"{"disconnect":{"code":3005,"#), "\(expired.bodyText)")

            let stream = try CurlStream(
                url,
                ["--data-binary", try Self.connectRequest(token: try RelayTokens.mint("brief", ttl: 2))]
            )
            defer { stream.stop() }
            let connect = try #require(try await Self.push(stream, sse: false)["connect"] as? [String: Any])
            #expect(connect["expires"] as? Bool == true, "\(connect)")
            let push = try await Self.push(stream, sse: false)
            #expect((push["disconnect"] as? [String: Any])?["code"] as? Int == 3005, "\(push)")
            #expect(try await stream.nextLine() == nil, "the response ends")
        }
    }

    @Test("graceful shutdown ends uni-directional streams (HTTP/1.1 SSE, HTTP/2 streaming) with a 3001 disconnect push")
    func shutdownEndsStreams() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write(RelayGateway.apiKey, to: "api.key")
        let file = try directory.write(RelayGateway.config(relay: Self.namespaces), to: "gateway.json")
        let gateway = try await LiveGateway.start(configFile: file, directory: directory, registry: gatewayRegistry)
        let origin = Self.origin(gateway)
        let request = try Self.connectRequest(token: try RelayTokens.mint("ida", channels: ["news:x"]))
        let streams = [
            (try CurlStream("\(origin)/relay/connection/uni_sse", ["--http1.1", "--data-binary", request]), true),
            (
                try CurlStream("\(origin)/relay/connection/uni_http_stream", ["--http2", "--data-binary", request]),
                false
            ),
        ]
        defer { for (stream, _) in streams { stream.stop() } }
        for (stream, sse) in streams {
            let connect = try await Self.push(stream, sse: sse)
            #expect(connect["connect"] != nil, "\(connect)")
        }
        let stopping = Task { try await gateway.shutdown() }
        for (stream, sse) in streams {
            let push = try await Self.push(stream, sse: sse)
            let disconnect = try #require(push["disconnect"] as? [String: Any], "\(push)")
            #expect(disconnect["code"] as? Int == 3001)
            #expect(disconnect["reason"] as? String == "shutdown")
            let rest = sse ? try await stream.nextLine(startingWith: "data: ") : try await stream.nextLine()
            #expect(rest == nil, "the response ends")
        }
        try await stopping.value
    }

    @Test(
        "a reload that keeps the relay keeps its streams; one that replaces it ends them with 3001 at once, not after the grace period"
    )
    func reloadEndsReplacedStreams() async throws {
        // No spread: the 3001 comes as soon as the reload retires the relay. The grace period is
        // 60 s: a stream that held the retirement would end after it (the bound below leaves a
        // loaded full run room, which once took 10 s to a 3001 sent at once).
        let relay = #""shutdownSpreadSeconds": 0, "# + Self.namespaces
        try await RelayGateway.with(relay: relay, graceSeconds: 60) { gateway in
            let request = try Self.connectRequest(token: try RelayTokens.mint("rey", channels: ["news:reload"]))
            let stream = try CurlStream(
                "\(Self.origin(gateway))/relay/connection/uni_http_stream",
                ["--data-binary", request]
            )
            defer { stream.stop() }
            #expect(try await Self.push(stream, sse: false)["connect"] != nil)

            // Nothing changed: the relay is carried over and the stream goes on.
            #expect((try? await gateway.controller.reloadFile(trigger: "test").get()) != nil)
            #expect(try await Self.publish(gateway, "news:reload", 1) == 1)
            #expect(Self.number(try await Self.push(stream, sse: false)["pub"]) == 1)
            // With nothing to shut down, the previous configuration is not held for the 60 s
            // grace period by the stream still open on it.
            var retiring = gateway.server.retirementsInProgress
            for _ in 0..<100 where retiring > 0 {
                try await Task.sleep(for: .milliseconds(100))
                retiring = gateway.server.retirementsInProgress
            }
            #expect(retiring == 0, "the reload that changed nothing waits for the open stream")

            // The API key file changes: the relay is re-created and the old one retired.
            try ("rotated-relay-api-key-0123456789\n").write(
                to: gateway.directory.url.appendingPathComponent("api.key"),
                atomically: true,
                encoding: .utf8
            )
            #expect((try? await gateway.controller.reloadFile(trigger: "test").get()) != nil)
            let started = ContinuousClock.now
            let push = try await Self.push(stream, sse: false)
            #expect((push["disconnect"] as? [String: Any])?["code"] as? Int == 3001, "\(push)")
            #expect(ContinuousClock.now - started < .seconds(30), "the stream waited for the grace period")
            #expect(try await stream.nextLine() == nil, "the response ends")
        }
    }

    @Test(
        "a uni-directional reader that stops reading meets its namespace's slow-consumer policy: closed (disconnect), or its lost server-side publications make it reconnect (dropOldest)",
        .serialized,
        arguments: ["flood:x", "refill:x"]
    )
    func stalledReader(channel: String) async throws {
        // A small queue, and no command limit for the publisher. The stream's socket keeps the
        // kernel's send buffer (`sendBufferBytes` is for WebSockets), which autotuning may grow
        // to 4 MB here: 8 MB are published.
        let relay = #""maxQueuedBytes": 65536, "commandsPerSecond": 100000, "commandBurst": 100000, "#
        try await RelayGateway.with(relay: relay + Self.namespaces) { gateway in
            let reader = try ChildProcess(
                "python3",
                [
                    repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/uni_stalled_reader.py")
                        .path,
                    String(gateway.port("https")), "/relay/connection/uni_http_stream",
                    try Self.connectRequest(token: try RelayTokens.mint("stan", channels: [channel])),
                ]
            )
            defer { reader.stop() }
            #expect(try await reader.firstLine(timeout: 20) == "ready")
            let before = try await RelayGateway.stats(gateway)
            #expect(before["uniConnections"] as? Int == 1, "\(before)")
            // Publishers may publish where the claim grants it (a prefix: not server-side).
            let (publisher, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("pete", channels: ["flood:*", "refill:*"])
            )
            defer { publisher.close() }
            // 8 MB in 16 KB publications: two floods at once once starved a loaded machine.
            let payload = String(repeating: "p", count: 16000)
            for n in 1...500 {
                publisher.send(#"{"publish":{"channel":"\#(channel)","data":{"n":\#(n),"p":"\#(payload)"}}}"#)
            }
            let stats = try await RelayGateway.waitForStats(gateway, seconds: 30) { $0["uniConnections"] as? Int == 0 }
            #expect(stats["uniConnections"] as? Int == 0, "the stalled reader was not closed: \(stats)")
            if channel.hasPrefix("flood") {
                #expect(stats["slowDisconnects"] as? Int == 1, "\(stats)")
            } else {
                // Dropped, and closed with 3010 so it reconnects and recovers them.
                #expect((stats["publicationsDropped"] as? Int ?? 0) > 0, "\(stats)")
                #expect(stats["slowDisconnects"] as? Int == 0, "\(stats)")
            }
        }
    }

    @Test(
        "centrifuge-python over WebSocket: the token's channels claim subscribes server-side, a reconnect recovers through the connect's subs, the server API's subscribe adds one",
        arguments: [false, true]
    )
    func pythonServerSide(protobuf: Bool) async throws {
        try await RelayGateway.with(relay: Self.namespaces) { gateway in
            let urls = RelayAPITests.urls(gateway)
            let user = protobuf ? "pia" : "jon"
            let outcome = try await RelayProtobufTests.scenario(
                protobuf: protobuf,
                "server-side",
                [
                    urls.websocket, try RelayTokens.mint(user, channels: ["news:python", "chat:*"]), urls.api,
                    RelayGateway.apiKey, user, "news:python",
                ]
            )
            #expect(outcome["first_channel"] as? String == "news:python", "\(outcome)")
            #expect(outcome["first_recoverable"] as? Bool == true)
            #expect(outcome["first_offset"] as? Int == 0)
            #expect(outcome["received"] as? [Int] == Array(1...7), "\(outcome)")
            #expect(outcome["channels"] as? [String] == ["news:python"])
            #expect(outcome["extra"] as? Int == 0)
            #expect(outcome["second_was_recovering"] as? Bool == true)
            #expect(outcome["second_recovered"] as? Bool == true)
            // The server API's subscribe: a subscribe push the SDK reports as a server-side subscription.
            #expect(outcome["added_channel"] as? String == "chat:added", "\(outcome)")
            #expect(outcome["added_recoverable"] as? Bool == true)
            #expect(outcome["added_publication"] as? [AnyHashable] == ["chat:added", 100])
        }
    }

    @Test(
        "an EventSource in Chromium receives publications over uni_sse and, after the server cut the stream, recovers what it missed",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        )
    )
    func eventSourceInChromium() async throws {
        try await RelayGateway.with(relay: Self.namespaces) { gateway in
            let origin = Self.origin(gateway)
            let token = try RelayTokens.mint("eve", channels: ["news:browser"])
            let browser = try HeadlessChromium(opening: "\(origin)/relay/health")
            defer { browser.stop() }
            // The blank page Chromium starts on is "complete" too: wait for the gateway's page.
            _ = try await browser.waitFor(
                #"location.origin === "\#(origin)" && document.readyState === "complete""#
            )
            _ = try await browser.evaluate(
                """
                (() => {
                    window.received = []; window.connects = []; window.disconnects = []; window.position = null;
                    window.openStream = (subs) => {
                        const request = { token: "\(token)" };
                        if (subs) request.subs = subs;
                        const source = new EventSource("/relay/connection/uni_sse?cf_connect=" + encodeURIComponent(JSON.stringify(request)));
                        source.onmessage = (event) => {
                            const message = JSON.parse(event.data);
                            if (message.connect) {
                                const sub = message.connect.subs["news:browser"];
                                window.connects.push(sub);
                                window.position = { offset: sub.offset, epoch: sub.epoch };
                                for (const publication of sub.publications || []) window.received.push(publication.data.n);
                            } else if (message.pub) {
                                window.received.push(message.pub.data.n);
                                window.position.offset = message.pub.offset;
                            } else if (message.disconnect) {
                                window.disconnects.push(message.disconnect.code);
                                source.close();
                            }
                        };
                        window.source = source;
                    };
                    window.openStream(null);
                    return true;
                })()
                """
            )
            let pageState =
                "JSON.stringify({ received, connects, disconnects, state: window.source && source.readyState })"
            _ = try await browser.waitFor("window.connects.length === 1", diagnostics: pageState)
            for n in 1...3 { #expect(try await Self.publish(gateway, "news:browser", n) == n) }
            _ = try await browser.waitFor("window.received.length >= 3", diagnostics: pageState)

            try await Self.disconnect(gateway, user: "eve", code: 3011, reason: "force reconnect")
            _ = try await browser.waitFor("window.disconnects.length === 1", diagnostics: pageState)
            for n in 4...5 { #expect(try await Self.publish(gateway, "news:browser", n) == n) }
            _ = try await browser.evaluate(
                #"window.openStream({ "news:browser": { recover: true, offset: position.offset, epoch: position.epoch } }); true"#
            )
            _ = try await browser.waitFor("window.connects.length === 2", diagnostics: pageState)
            #expect(try await browser.evaluate("window.connects[1].recovered") as? Bool == true)
            #expect(try await Self.publish(gateway, "news:browser", 6) == 6)
            _ = try await browser.waitFor("window.received.length >= 6", diagnostics: pageState)
            let received = try await browser.evaluate("window.received") as? [Int]
            #expect(received == Array(1...6), "none lost, none twice")
            #expect(try await browser.evaluate("window.disconnects") as? [Int] == [3011])
        }
    }
}
