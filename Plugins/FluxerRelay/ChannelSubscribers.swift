/// The subscribers of one channel on one event loop, in a contiguous array: a publication is
/// delivered by walking it, with the channel name hashed once per loop, not once per subscriber.
///
/// Each member pairs the connection with its ``RelayConnection/Subscription``, so a delivery
/// needs no lookup in the connection either. Removing swaps the last member into the gap; the
/// order among subscribers carries no meaning (each connection's own order is kept, as every
/// delivery to it runs on its loop in publication order). A walk goes over the array as it was
/// when the walk began: a subscriber that leaves during it (a slow consumer disconnected by its
/// own delivery) is marked ended first and skipped, one that joins gets the next publication.
/// Only touched on its loop.
final class ChannelSubscribers {
    struct Member {
        /// Not retained, so a walk costs no reference counting on the connection (whose count
        /// is slow: weak references to it give it a side table). Safe because a connection
        /// stays in its hub's ``LoopHub/connections`` until its subscriptions have ended
        /// (``RelayConnection/tearDown()``), and a walk reads ``subscription`` first and skips
        /// an ended one without touching the connection.
        unowned(unsafe) let connection: RelayConnection
        let subscription: RelayConnection.Subscription
    }

    private(set) var members: [Member] = []
    /// Where each connection's member sits in ``members``.
    private var positions: [ObjectIdentifier: Int] = [:]

    var count: Int { self.members.count }

    var isEmpty: Bool { self.members.isEmpty }

    /// Adds `connection` with `subscription`, or gives it `subscription` in place of the one it had.
    /// - Returns: whether the connection was not a member before.
    @discardableResult
    func insert(_ connection: RelayConnection, _ subscription: RelayConnection.Subscription) -> Bool {
        let member = Member(connection: connection, subscription: subscription)
        let key = ObjectIdentifier(connection)
        if let position = self.positions[key] {
            self.members[position] = member
            return false
        }
        self.positions[key] = self.members.count
        self.members.append(member)
        return true
    }

    /// Removes `connection`.
    /// - Returns: whether it was a member.
    @discardableResult
    func remove(_ connection: RelayConnection) -> Bool {
        guard let position = self.positions.removeValue(forKey: ObjectIdentifier(connection)) else { return false }
        let last = self.members.removeLast()
        if position < self.members.count {
            self.members[position] = last
            self.positions[ObjectIdentifier(last.connection)] = position
        }
        return true
    }
}

/// Confined to its loop's ``LoopHub``.
extension ChannelSubscribers: @unchecked Sendable {}
