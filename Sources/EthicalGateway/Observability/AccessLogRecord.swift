import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One access-log line: a JSON object with the request's time (RFC 3339, UTC, milliseconds),
/// id, W3C trace id, client, method, host, path (never the query, which may carry tokens), protocol, status,
/// body bytes each way, duration in seconds, route, backend, upstream, and the token's subject
/// or the reason it was refused. Fields that do not apply are left out.
struct AccessLogRecord {
    var requestID: String
    var traceID: String?
    var client: String?
    var method: String
    var host: String?
    var path: String
    var httpVersion: String
    var status: UInt
    var requestBytes: Int
    var responseBytes: Int
    var seconds: Double
    var route: String?
    var backend: String?
    var upstream: String?
    var subject: String?
    var authRefusal: String?

    /// The line, with its newline, as UTF-8 bytes (built in one buffer: no string per field).
    func line(at time: timespec = Self.now()) -> [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(512)
        Self.raw("{\"time\":\"", &json)
        Self.rfc3339(time, into: &json)
        Self.raw("\",\"requestId\":", &json)
        appendJSONString(self.requestID, to: &json)
        Self.field("traceId", self.traceID, &json)
        Self.field("client", self.client, &json)
        Self.raw(",\"method\":", &json)
        appendJSONString(self.method, to: &json)
        Self.field("host", self.host, &json)
        Self.raw(",\"path\":", &json)
        appendJSONString(self.path, to: &json)
        Self.raw(",\"protocol\":\"", &json)
        Self.raw(self.httpVersion, &json)
        Self.raw("\",\"status\":", &json)
        Self.integer(Int64(self.status), &json)
        Self.raw(",\"requestBytes\":", &json)
        Self.integer(Int64(self.requestBytes), &json)
        Self.raw(",\"responseBytes\":", &json)
        Self.integer(Int64(self.responseBytes), &json)
        Self.raw(",\"duration\":", &json)
        Self.seconds(self.seconds, &json)
        Self.field("route", self.route, &json)
        Self.field("backend", self.backend, &json)
        Self.field("upstream", self.upstream, &json)
        Self.field("subject", self.subject, &json)
        Self.field("authRefusal", self.authRefusal, &json)
        Self.raw("}\n", &json)
        return json
    }

    private static func field(_ name: String, _ value: String?, _ json: inout [UInt8]) {
        guard let value else { return }
        json.append(UInt8(ascii: ","))
        json.append(UInt8(ascii: "\""))
        Self.raw(name, &json)
        Self.raw("\":", &json)
        appendJSONString(value, to: &json)
    }

    private static func raw(_ text: String, _ json: inout [UInt8]) {
        json.append(contentsOf: text.utf8)
    }

    private static func integer(_ value: Int64, _ json: inout [UInt8]) {
        if value < 0 { json.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: [UInt8] = []
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        json.append(contentsOf: digits.reversed())
    }

    /// `width` digits of `value`, zero-padded.
    private static func padded(_ value: Int64, width: Int, _ json: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            json.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Seconds with six decimals (`0.004113`), by integer arithmetic.
    static func seconds(_ seconds: Double, _ json: inout [UInt8]) {
        let micros = Int64((max(0, seconds) * 1_000_000).rounded())
        Self.integer(micros / 1_000_000, &json)
        json.append(UInt8(ascii: "."))
        Self.padded(micros % 1_000_000, width: 6, &json)
    }

    /// `2026-11-30T01:02:03.456Z` into `json`.
    static func rfc3339(_ time: timespec, into json: inout [UInt8]) {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        Self.padded(Int64(parts.tm_year + 1900), width: 4, &json)
        json.append(UInt8(ascii: "-"))
        Self.padded(Int64(parts.tm_mon + 1), width: 2, &json)
        json.append(UInt8(ascii: "-"))
        Self.padded(Int64(parts.tm_mday), width: 2, &json)
        json.append(UInt8(ascii: "T"))
        Self.padded(Int64(parts.tm_hour), width: 2, &json)
        json.append(UInt8(ascii: ":"))
        Self.padded(Int64(parts.tm_min), width: 2, &json)
        json.append(UInt8(ascii: ":"))
        Self.padded(Int64(parts.tm_sec), width: 2, &json)
        json.append(UInt8(ascii: "."))
        Self.padded(Int64(time.tv_nsec / 1_000_000), width: 3, &json)
        json.append(UInt8(ascii: "Z"))
    }

    /// `2026-11-30T01:02:03.456Z`.
    static func rfc3339(_ time: timespec) -> String {
        var bytes: [UInt8] = []
        Self.rfc3339(time, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

}
