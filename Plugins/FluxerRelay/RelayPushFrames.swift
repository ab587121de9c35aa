import NIOConcurrencyHelpers
import NIOCore

/// One channel event (a publication, join or leave) as every subscriber on one event loop
/// writes it: encoded once per format and shared, never once per subscriber.
///
/// The JSON frame is encoded when the event is dispatched, as every relay has JSON
/// subscribers to expect, and copied for each loop (see ``RelayHub/dispatch(_:)``). The
/// Protobuf frame is encoded by the loop's first Protobuf subscriber that takes it and the
/// rest of them reuse it; a loop without Protobuf subscribers never encodes one.
final class RelayPushFrames: Sendable {
    /// The JSON format's frame (text).
    let json: ByteBuffer
    private let channel: String
    private let event: RelayEvent
    private let protobuf = NIOLockedValueBox(ProtobufState.notEncoded)

    private enum ProtobufState {
        case notEncoded
        case encoded(ByteBuffer)
        /// The event cannot be carried in the Protobuf format (a shared engine's publication
        /// that is not a JSON object): Protobuf subscribers do not get it.
        case notEncodable
    }

    init(json: ByteBuffer, channel: String, event: RelayEvent) {
        self.json = json
        self.channel = channel
        self.event = event
    }

    /// The frame a connection of `format` writes, or nil when the event has none in that format.
    func frame(for format: RelayFormat) -> ByteBuffer? {
        switch format {
        case .json: return self.json
        case .protobuf:
            return self.protobuf.withLockedValue { state in
                switch state {
                case .encoded(let frame): return frame
                case .notEncodable: return nil
                case .notEncoded:
                    guard let reply = self.protobufReply() else {
                        state = .notEncodable
                        return nil
                    }
                    let frame = ProtobufReplies.frame(reply)
                    state = .encoded(frame)
                    return frame
                }
            }
        }
    }

    private func protobufReply() -> ProtobufReplies.Reply? {
        switch self.event {
        case .publication(_, let publication):
            return ProtobufReplies.publication(channel: self.channel, publication)
        case .encodedPublication(_, _, let body):
            return ProtobufReplies.publication(channel: self.channel, encodedBody: body)
        case .join(_, let info):
            return ProtobufReplies.presenceChange(channel: self.channel, info, leave: false)
        case .leave(_, let info):
            return ProtobufReplies.presenceChange(channel: self.channel, info, leave: true)
        case .insufficientState:
            return nil
        }
    }
}
