import Foundation
import NIOCore
import SwiftProtobuf

/// The Protobuf format's server-to-client messages: `Reply` messages built from the results the
/// dispatcher produces (objects under the protocol's field names, as the JSON format writes
/// them), framed as WebSocket binary messages with a varint length prefix.
enum ProtobufReplies {
    typealias Reply = Centrifugal_Centrifuge_Protocol_Reply
    typealias Publication = Centrifugal_Centrifuge_Protocol_Publication
    typealias ClientInfoMessage = Centrifugal_Centrifuge_Protocol_ClientInfo

    /// A whole server-to-client WebSocket binary frame (unmasked) carrying `reply`, length-delimited.
    static func frame(_ reply: Reply) -> ByteBuffer {
        let bytes: [UInt8]
        do {
            bytes = try reply.serializedBytes()
        } catch {
            // Proto3 messages have no required fields and Swift strings are valid UTF-8: nothing
            // the relay builds can fail to serialize.
            preconditionFailure("a Reply did not serialize: \(error)")
        }
        var payload = ByteBuffer()
        payload.reserveCapacity(bytes.count + 5)
        ProtobufFraming.writeLength(bytes.count, to: &payload)
        payload.writeBytes(bytes)
        return Push.frame(payload, opcode: .binary)
    }

    /// A server ping: an empty `Reply`, framed.
    static let ping = Self.frame(Reply())

    /// The reply to command `id` with the `result` of `method` (the object the JSON format sends).
    static func reply(id: UInt64, method: String, result: WireJSON) -> Reply {
        var reply = Reply()
        reply.id = UInt32(truncatingIfNeeded: id)
        switch method {
        case "connect":
            reply.connect.client = result["client"]?.stringValue ?? ""
            reply.connect.version = result["version"]?.stringValue ?? ""
            reply.connect.expires = result["expires"]?.boolValue ?? false
            reply.connect.ttl = Self.uint32(result["ttl"])
            reply.connect.ping = Self.uint32(result["ping"])
            reply.connect.pong = result["pong"]?.boolValue ?? false
            if case .object(let subs)? = result["subs"] {
                reply.connect.subs = subs.mapValues(Self.subscribeResult)
            }
        case "subscribe":
            reply.subscribe = Self.subscribeResult(result)
        case "unsubscribe": reply.unsubscribe = .init()
        case "publish": reply.publish = .init()
        case "presence":
            if case .object(let clients)? = result["presence"] {
                reply.presence.presence = clients.mapValues(Self.clientInfo)
            } else {
                reply.presence = .init()
            }
        case "presence_stats":
            reply.presenceStats.numClients = Self.uint32(result["num_clients"])
            reply.presenceStats.numUsers = Self.uint32(result["num_users"])
        case "history":
            reply.history.publications = Self.publications(result["publications"])
            reply.history.epoch = result["epoch"]?.stringValue ?? ""
            reply.history.offset = result["offset"]?.unsignedValue ?? 0
        case "ping": reply.ping = .init()
        case "refresh":
            reply.refresh.client = result["client"]?.stringValue ?? ""
            reply.refresh.version = result["version"]?.stringValue ?? ""
            reply.refresh.expires = result["expires"]?.boolValue ?? false
            reply.refresh.ttl = Self.uint32(result["ttl"])
        case "sub_refresh":
            reply.subRefresh.expires = result["expires"]?.boolValue ?? false
            reply.subRefresh.ttl = Self.uint32(result["ttl"])
        default:
            preconditionFailure("no Protobuf result for method \(method)")
        }
        return reply
    }

    /// The error reply to command `id`.
    static func error(id: UInt64, _ error: RelayError) -> Reply {
        var reply = Reply()
        reply.id = UInt32(truncatingIfNeeded: id)
        reply.error.code = UInt32(error.code)
        reply.error.message = error.message
        reply.error.temporary = error.temporary
        return reply
    }

    /// An `unsubscribe` push: the server ended the subscription to `channel`.
    static func unsubscribe(channel: String, _ reason: RelayUnsubscribe) -> Reply {
        var reply = Reply()
        reply.push.channel = channel
        reply.push.unsubscribe.code = UInt32(reason.code)
        reply.push.unsubscribe.reason = reason.reason
        return reply
    }

    /// A `subscribe` push: the server subscribed the connection to `channel`, at the position
    /// of its subscribe `result`.
    static func subscribe(channel: String, result: WireJSON) -> Reply {
        var reply = Reply()
        reply.push.channel = channel
        reply.push.subscribe.recoverable = result["recoverable"]?.boolValue ?? false
        reply.push.subscribe.positioned = result["positioned"]?.boolValue ?? false
        reply.push.subscribe.epoch = result["epoch"]?.stringValue ?? ""
        reply.push.subscribe.offset = result["offset"]?.unsignedValue ?? 0
        return reply
    }

    /// A `pub` push of `publication` on `channel`.
    static func publication(channel: String, _ publication: RelayPublication) -> Reply {
        var message = Publication()
        message.data = Self.bytes(publication.data)
        message.offset = publication.offset
        if let info = publication.info { message.info = Self.clientInfo(info) }
        message.tags = publication.tags
        var reply = Reply()
        reply.push.channel = channel
        reply.push.pub = message
        return reply
    }

    /// A `pub` push of a publication already encoded as its JSON object (as a shared engine
    /// delivers it); nil when `body` is not such an object.
    static func publication(channel: String, encodedBody body: ByteBuffer) -> Reply? {
        guard let object = try? WireJSON.parse(body.readableBytesView), let message = Self.publication(object) else {
            return nil
        }
        var reply = Reply()
        reply.push.channel = channel
        reply.push.pub = message
        return reply
    }

    /// A `join` (or, with `leave`, a `leave`) push of `info` on `channel`.
    static func presenceChange(channel: String, _ info: ClientInfo, leave: Bool) -> Reply {
        var reply = Reply()
        reply.push.channel = channel
        if leave {
            reply.push.leave.info = Self.clientInfo(info)
        } else {
            reply.push.join.info = Self.clientInfo(info)
        }
        return reply
    }

    // MARK: From the JSON shapes

    /// A subscribe result object (a `subscribe` reply's, or one of a connect result's `subs`).
    private static func subscribeResult(_ result: WireJSON) -> Centrifugal_Centrifuge_Protocol_SubscribeResult {
        var message = Centrifugal_Centrifuge_Protocol_SubscribeResult()
        message.expires = result["expires"]?.boolValue ?? false
        message.ttl = Self.uint32(result["ttl"])
        message.recoverable = result["recoverable"]?.boolValue ?? false
        message.epoch = result["epoch"]?.stringValue ?? ""
        message.offset = result["offset"]?.unsignedValue ?? 0
        message.positioned = result["positioned"]?.boolValue ?? false
        message.wasRecovering = result["was_recovering"]?.boolValue ?? false
        message.recovered = result["recovered"]?.boolValue ?? false
        message.publications = Self.publications(result["publications"])
        return message
    }

    private static func publications(_ value: WireJSON?) -> [Publication] {
        guard case .array(let values)? = value else { return [] }
        return values.compactMap(Self.publication)
    }

    /// `{"data":…,"offset":…,"info":…,"tags":…}` as a `Publication`.
    private static func publication(_ object: WireJSON) -> Publication? {
        guard case .object(let members) = object else { return nil }
        var message = Publication()
        if let data = members["data"] { message.data = Self.bytes(data) }
        message.offset = members["offset"]?.unsignedValue ?? 0
        if let info = members["info"] { message.info = Self.clientInfo(info) }
        if case .object(let tags)? = members["tags"] { message.tags = tags.compactMapValues(\.stringValue) }
        return message
    }

    private static func clientInfo(_ info: ClientInfo) -> ClientInfoMessage {
        var message = ClientInfoMessage()
        message.user = info.user
        message.client = info.client
        if let connInfo = info.connInfo { message.connInfo = Self.bytes(connInfo) }
        return message
    }

    /// `{"user":…,"client":…,"conn_info":…}` as a `ClientInfo`.
    private static func clientInfo(_ value: WireJSON) -> ClientInfoMessage {
        var message = ClientInfoMessage()
        message.user = value["user"]?.stringValue ?? ""
        message.client = value["client"]?.stringValue ?? ""
        if let connInfo = value["conn_info"] { message.connInfo = Self.bytes(connInfo) }
        if let chanInfo = value["chan_info"] { message.chanInfo = Self.bytes(chanInfo) }
        return message
    }

    /// A JSON `data` value as the Protobuf format's bytes: its JSON text.
    private static func bytes(_ value: WireJSON) -> Data {
        Data(value.encoded.readableBytesView)
    }

    private static func uint32(_ value: WireJSON?) -> UInt32 {
        UInt32(clamping: value?.unsignedValue ?? 0)
    }
}
