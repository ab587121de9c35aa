import NIOCore

/// The steps after the TCP (and TLS) connect: protocol, authentication, database.
struct Handshake {
    let configuration: RedisClientConfiguration
    let channel: any Channel
    let handler: NIOLoopBound<RedisCommandHandler>

    private func send(_ command: String, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let promise = self.channel.eventLoop.makePromise(of: RESPValue.self)
        self.handler.value.send(command, arguments, promise: promise)
        return promise.futureResult
    }

    func run() -> EventLoopFuture<RedisConnection> {
        let eventLoop = self.channel.eventLoop
        let versionAndProtocol: EventLoopFuture<(version: String, protocolVersion: Int)>
        if self.configuration.preferredProtocol >= 3 {
            var arguments: [RESPArgument] = ["3"]
            if let password = self.configuration.effectivePassword {
                arguments += [
                    "AUTH", RESPArgument(self.configuration.effectiveUsername ?? "default"), RESPArgument(password),
                ]
            }
            versionAndProtocol = self.send("HELLO", arguments).flatMap { reply in
                eventLoop.makeSucceededFuture((reply["version"]?.string ?? "", 3))
            }.flatMapError { error in
                guard let serverError = error as? RedisServerError else {
                    return eventLoop.makeFailedFuture(error)
                }
                if Self.isAuthenticationFailure(serverError) {
                    return eventLoop.makeFailedFuture(RedisClientError.authenticationFailed(serverError.message))
                }
                // NOPROTO, or an older server's "unknown command 'HELLO'": speak RESP2.
                return self.runRESP2()
            }
        } else {
            versionAndProtocol = self.runRESP2()
        }
        return versionAndProtocol.flatMap { version, protocolVersion in
            let selected: EventLoopFuture<Void>
            if self.configuration.endpoint.database != 0 {
                selected = self.send("SELECT", [RESPArgument(self.configuration.endpoint.database)]).map { _ in }
            } else {
                selected = eventLoop.makeSucceededVoidFuture()
            }
            return selected.map {
                RedisConnection(
                    channel: self.channel,
                    handler: self.handler,
                    protocolVersion: protocolVersion,
                    serverVersion: version
                )
            }
        }
    }

    private func runRESP2() -> EventLoopFuture<(version: String, protocolVersion: Int)> {
        let eventLoop = self.channel.eventLoop
        let authenticated: EventLoopFuture<Void>
        if let password = self.configuration.effectivePassword {
            var arguments: [RESPArgument] = []
            if let username = self.configuration.effectiveUsername { arguments.append(RESPArgument(username)) }
            arguments.append(RESPArgument(password))
            authenticated = self.send("AUTH", arguments).map { _ in }.flatMapErrorThrowing { error in
                if let serverError = error as? RedisServerError {
                    throw RedisClientError.authenticationFailed(serverError.message)
                }
                throw error
            }
        } else {
            authenticated = eventLoop.makeSucceededVoidFuture()
        }
        return authenticated.flatMap {
            self.send("INFO", ["server"])
        }.flatMapErrorThrowing { error in
            if let serverError = error as? RedisServerError, Self.isAuthenticationFailure(serverError) {
                throw RedisClientError.authenticationFailed(serverError.message)
            }
            throw error
        }.map { info in
            let text = info.string ?? ""
            let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
            return (line.map { String($0.dropFirst("redis_version:".count)) } ?? "", 2)
        }
    }

    private static func isAuthenticationFailure(_ error: RedisServerError) -> Bool {
        ["WRONGPASS", "NOAUTH", "NOPERM"].contains(error.code)
            || error.message.contains("AUTH") && error.code == "ERR" && !error.message.contains("unknown command")
    }
}
