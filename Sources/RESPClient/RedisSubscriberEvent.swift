public import NIOCore

/// What a ``RedisSubscriber`` tells its handler, in the order it happens.
public enum RedisSubscriberEvent: Sendable {
    /// A message published on a subscribed channel.
    case message(channel: String, payload: ByteBuffer)
    /// The connection is up and every channel wanted is subscribed again; `afterLoss` is true when
    /// an earlier connection had been lost (messages may have been missed meanwhile).
    case subscribed(afterLoss: Bool)
    /// The connection was lost; messages published until `.subscribed` comes are missed.
    case disconnected
}
