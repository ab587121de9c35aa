import SwiftProtobuf

/// The Protobuf format's commands: a `Command` message carried over into a ``RelayCommand``.
extension RelayCommand {
    /// Decodes one Protobuf `Command` (one length-delimited message of a binary frame).
    ///
    /// Proto3 has no "absent" for scalars, so every scalar parameter is carried over with its
    /// value, defaults included; the dispatcher treats `""`, `0` and `false` as JSON treats a
    /// missing field. `data` (bytes) is carried over as the JSON it must hold: the relay keeps
    /// JSON documents, which JSON subscribers receive embedded (see docs/relay-protocol.md).
    static func decode(protobuf bytes: [UInt8]) -> Decoded {
        let command: Centrifugal_Centrifuge_Protocol_Command
        do {
            command = try Centrifugal_Centrifuge_Protocol_Command(serializedBytes: bytes)
        } catch {
            return .malformed("bad request: not a Protobuf Command (\(error))")
        }
        let id = UInt64(command.id)
        var found: [(method: String, params: [String: WireJSON], error: RelayError?)] = []
        if command.hasConnect {
            let request = command.connect
            var params: [String: WireJSON] = [
                "token": .string(request.token), "name": .string(request.name),
                "version": .string(request.version),
            ]
            if !request.subs.isEmpty {
                // The server-side subscriptions to recover, as the JSON format's `subs` object.
                params["subs"] = .object(
                    request.subs.mapValues { sub in
                        .object([
                            "recover": .bool(sub.recover), "offset": .number(String(sub.offset)),
                            "epoch": .string(sub.epoch),
                        ])
                    }
                )
            }
            found.append(("connect", params, nil))
        }
        if command.hasSubscribe {
            let request = command.subscribe
            found.append(
                (
                    "subscribe",
                    [
                        "channel": .string(request.channel), "token": .string(request.token),
                        "recover": .bool(request.recover), "epoch": .string(request.epoch),
                        "offset": .number(String(request.offset)), "positioned": .bool(request.positioned),
                        "recoverable": .bool(request.recoverable), "join_leave": .bool(request.joinLeave),
                    ],
                    nil
                )
            )
        }
        if command.hasUnsubscribe {
            found.append(("unsubscribe", ["channel": .string(command.unsubscribe.channel)], nil))
        }
        if command.hasPublish {
            let request = command.publish
            var params: [String: WireJSON] = ["channel": .string(request.channel)]
            var problem: RelayError?
            do {
                params["data"] = try WireJSON.parse(request.data)
            } catch {
                problem = RelayError.badRequest.with(
                    message: "bad request: publish.data must be a JSON document (the relay keeps JSON): \(error)"
                )
            }
            found.append(("publish", params, problem))
        }
        if command.hasPresence {
            found.append(("presence", ["channel": .string(command.presence.channel)], nil))
        }
        if command.hasPresenceStats {
            found.append(("presence_stats", ["channel": .string(command.presenceStats.channel)], nil))
        }
        if command.hasHistory {
            let request = command.history
            var params: [String: WireJSON] = [
                "channel": .string(request.channel), "limit": .number(String(request.limit)),
                "reverse": .bool(request.reverse),
            ]
            if request.hasSince {
                params["since"] = .object([
                    "offset": .number(String(request.since.offset)), "epoch": .string(request.since.epoch),
                ])
            }
            found.append(("history", params, nil))
        }
        if command.hasPing { found.append(("ping", [:], nil)) }
        if command.hasSend { found.append(("send", [:], nil)) }
        if command.hasRpc { found.append(("rpc", ["method": .string(command.rpc.method)], nil)) }
        if command.hasRefresh { found.append(("refresh", ["token": .string(command.refresh.token)], nil)) }
        if command.hasSubRefresh {
            let request = command.subRefresh
            found.append(("sub_refresh", ["channel": .string(request.channel), "token": .string(request.token)], nil))
        }
        if found.isEmpty {
            // An empty Command is the client's pong; one with an id but no request is an error.
            if id == 0 { return .pong }
            return .invalid(
                id: id,
                RelayError.badRequest.with(message: "bad request: a command has exactly one method")
            )
        }
        guard found.count == 1, let only = found.first else {
            return .invalid(
                id: id,
                RelayError.badRequest.with(message: "bad request: a command has exactly one method")
            )
        }
        return .command(
            RelayCommand(id: id, method: only.method, params: .object(only.params), parameterError: only.error)
        )
    }
}
