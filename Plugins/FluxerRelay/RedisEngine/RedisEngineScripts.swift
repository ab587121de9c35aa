import RESPClient

/// The Lua scripts of the Redis engine. Each runs atomically in Redis, so a publish's offset,
/// history entry, idempotency record and pub/sub message are one step that no other node can
/// interleave with. Called with `EVALSHA` (the client falls back to `EVAL` on `NOSCRIPT`).
enum RedisEngineScripts {
    /// Publishes one publication.
    ///
    /// KEYS: meta, history, idempotency. ARGV: pub/sub channel, publication JSON (without
    /// offset), history size, history TTL seconds, meta TTL seconds, epoch to start when the
    /// channel has none, idempotency window in milliseconds (0: no key), publish command
    /// (`publish` or `spublish`).
    ///
    /// Returns `{duplicate (0 or 1), "<offset>:<epoch>"}`; offset 0 and an empty epoch when the
    /// namespace keeps no history.
    static let publish = RedisScript(
        """
        local window = tonumber(ARGV[7])
        if window > 0 then
          local seen = redis.call('get', KEYS[3])
          if seen then return {1, seen} end
        end
        local offset = 0
        local epoch = ''
        if tonumber(ARGV[3]) > 0 then
          epoch = redis.call('hget', KEYS[1], 'e')
          if not epoch then
            epoch = ARGV[6]
            redis.call('del', KEYS[2])
            redis.call('hset', KEYS[1], 'e', epoch, 's', 0)
          end
          offset = redis.call('hincrby', KEYS[1], 's', 1)
          redis.call('expire', KEYS[1], ARGV[5])
          redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[3], string.format('%d', offset) .. '-1', 'd', ARGV[2])
          redis.call('expire', KEYS[2], ARGV[4])
        end
        local position = string.format('%d', offset) .. ':' .. epoch
        if window > 0 then redis.call('set', KEYS[3], position, 'PX', window) end
        redis.call(ARGV[8], ARGV[1], 'p' .. position .. ':' .. ARGV[2])
        return {0, position}
        """
    )

    /// Reads a channel's position and some of its publications, bounded in Redis (a history of
    /// large publications is never read whole for a `limit` of one).
    ///
    /// KEYS: meta, history. ARGV: epoch to start when the channel has none (empty: start none,
    /// answer with an empty epoch), meta TTL seconds, the first entry id to read (`-` for the
    /// oldest; `<since + 1>-0` computed by the caller), how many to read (`-1` all, `0` none),
    /// `1` to read the newest first, the last entry id a newest-first read starts from (`+`:
    /// the newest; `<since - 1>-<max>` for a reverse read before `since`).
    ///
    /// Returns `{top offset, epoch, first offset at or after the start (0: none), offset1,
    /// publication1, …}`.
    static let history = RedisScript(
        """
        local epoch = redis.call('hget', KEYS[1], 'e')
        if not epoch then
          if ARGV[1] == '' then return {'0', '', 0} end
          epoch = ARGV[1]
          redis.call('del', KEYS[2])
          redis.call('hset', KEYS[1], 'e', epoch, 's', 0)
        end
        redis.call('expire', KEYS[1], ARGV[2])
        local result = {redis.call('hget', KEYS[1], 's') or '0', epoch, 0}
        local first = redis.call('xrange', KEYS[2], ARGV[3], '+', 'COUNT', 1)
        if #first > 0 then result[3] = string.sub(first[1][1], 1, string.find(first[1][1], '-', 1, true) - 1) end
        local count = tonumber(ARGV[4])
        if count == 0 then return result end
        local entries
        if ARGV[5] == '1' then
          if count > 0 then
            entries = redis.call('xrevrange', KEYS[2], ARGV[6], ARGV[3], 'COUNT', count)
          else
            entries = redis.call('xrevrange', KEYS[2], ARGV[6], ARGV[3])
          end
        elseif count > 0 then
          entries = redis.call('xrange', KEYS[2], ARGV[3], '+', 'COUNT', count)
        else
          entries = redis.call('xrange', KEYS[2], ARGV[3], '+')
        end
        for _, entry in ipairs(entries) do
          local id = entry[1]
          result[#result + 1] = string.sub(id, 1, string.find(id, '-', 1, true) - 1)
          result[#result + 1] = entry[2][2]
        end
        return result
        """
    )

    /// Drops presence entries whose owner stopped refreshing them; shared by the presence scripts.
    private static let cleanPresence = """
        local function clean()
          local now = redis.call('time')[1]
          local expired = redis.call('zrangebyscore', KEYS[2], '-inf', now)
          for _, client in ipairs(expired) do
            local entry = redis.call('hget', KEYS[1], client)
            if entry then
              local user = string.sub(entry, 1, string.find(entry, '\\n', 1, true) - 1)
              redis.call('hdel', KEYS[1], client)
              if redis.call('hincrby', KEYS[3], user, -1) <= 0 then redis.call('hdel', KEYS[3], user) end
            end
          end
          if #expired > 0 then redis.call('zremrangebyscore', KEYS[2], '-inf', now) end
        end
        """

    /// Adds (or refreshes) a presence entry. KEYS: presence data, expiry, users. ARGV: client,
    /// user, info JSON, TTL seconds, pub/sub channel, announce (`1`: publish a join), publish command.
    static let addPresence = RedisScript(
        """
        local now = redis.call('time')[1]
        if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then redis.call('hincrby', KEYS[3], ARGV[2], 1) end
        redis.call('hset', KEYS[1], ARGV[1], ARGV[2] .. '\\n' .. ARGV[3])
        redis.call('zadd', KEYS[2], tonumber(now) + tonumber(ARGV[4]), ARGV[1])
        for i = 1, 3 do redis.call('expire', KEYS[i], ARGV[4]) end
        if ARGV[6] == '1' then redis.call(ARGV[7], ARGV[5], 'j' .. ARGV[3]) end
        return 1
        """
    )

    /// Refreshes this node's presence entries of one channel in one call. KEYS: presence data,
    /// expiry, users. ARGV: TTL seconds, then client, user, info JSON for each entry.
    static let refreshPresence = RedisScript(
        """
        local expires = tonumber(redis.call('time')[1]) + tonumber(ARGV[1])
        for i = 2, #ARGV, 3 do
          if redis.call('hexists', KEYS[1], ARGV[i]) == 0 then redis.call('hincrby', KEYS[3], ARGV[i + 1], 1) end
          redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1] .. '\\n' .. ARGV[i + 2])
          redis.call('zadd', KEYS[2], expires, ARGV[i])
        end
        for i = 1, 3 do redis.call('expire', KEYS[i], ARGV[1]) end
        return 1
        """
    )

    /// Removes a presence entry. KEYS: presence data, expiry, users. ARGV: client, pub/sub
    /// channel, announce (`1`: publish a leave), publish command, info JSON.
    static let removePresence = RedisScript(
        """
        local entry = redis.call('hget', KEYS[1], ARGV[1])
        if not entry then return 0 end
        local user = string.sub(entry, 1, string.find(entry, '\\n', 1, true) - 1)
        redis.call('hdel', KEYS[1], ARGV[1])
        redis.call('zrem', KEYS[2], ARGV[1])
        if redis.call('hincrby', KEYS[3], user, -1) <= 0 then redis.call('hdel', KEYS[3], user) end
        if ARGV[3] == '1' then redis.call(ARGV[4], ARGV[2], 'l' .. ARGV[5]) end
        return 1
        """
    )

    /// The live presence entries. KEYS: presence data, expiry, users. Returns `{client, entry, …}`.
    static let presence = RedisScript(
        Self.cleanPresence + """

            clean()
            return redis.call('hgetall', KEYS[1])
            """
    )

    /// Counts of the live presence entries. KEYS: presence data, expiry, users. Returns `{clients, users}`.
    static let presenceStats = RedisScript(
        Self.cleanPresence + """

            clean()
            return {redis.call('zcard', KEYS[2]), redis.call('hlen', KEYS[3])}
            """
    )

    /// Replaces the shared namespaces if nobody changed them since `expected` was read.
    /// KEYS: namespaces hash. ARGV: expected version, JSON document, change channel, publish command.
    /// Returns the new version, or -1 when another node changed them first.
    static let replaceNamespaces = RedisScript(
        """
        local version = tonumber(redis.call('hget', KEYS[1], 'v') or '0')
        if version ~= tonumber(ARGV[1]) then return -1 end
        redis.call('hset', KEYS[1], 'v', version + 1, 'doc', ARGV[2])
        redis.call(ARGV[4], ARGV[3], tostring(version + 1))
        return version + 1
        """
    )
}
