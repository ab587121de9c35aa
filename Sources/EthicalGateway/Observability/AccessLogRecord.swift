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

    /// The line, with its newline.
    func line(at time: timespec = Self.now()) -> String {
        var json = "{\"time\":\""
        json += Self.rfc3339(time)
        json += "\",\"requestId\":"
        appendJSONString(self.requestID, to: &json)
        Self.field("traceId", self.traceID, &json)
        Self.field("client", self.client, &json)
        json += ",\"method\":"
        appendJSONString(self.method, to: &json)
        Self.field("host", self.host, &json)
        json += ",\"path\":"
        appendJSONString(self.path, to: &json)
        json += ",\"protocol\":\"\(self.httpVersion)\",\"status\":\(self.status)"
        json += ",\"requestBytes\":\(self.requestBytes),\"responseBytes\":\(self.responseBytes)"
        json += ",\"duration\":"
        Self.appendSeconds(self.seconds, to: &json)
        Self.field("route", self.route, &json)
        Self.field("backend", self.backend, &json)
        Self.field("upstream", self.upstream, &json)
        Self.field("subject", self.subject, &json)
        Self.field("authRefusal", self.authRefusal, &json)
        json += "}\n"
        return json
    }

    private static func field(_ name: String, _ value: String?, _ json: inout String) {
        guard let value else { return }
        json += ",\"\(name)\":"
        appendJSONString(value, to: &json)
    }

    /// Seconds with six decimals (`0.004113`), by integer arithmetic (Foundation's
    /// `String(format:)` costs about 10,000 instructions).
    static func appendSeconds(_ seconds: Double, to json: inout String) {
        let micros = Int64((max(0, seconds) * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        json += String(micros / 1_000_000)
        json += "."
        json += String(repeating: "0", count: 6 - fraction.utf8.count)
        json += fraction
    }

    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// `2026-11-30T01:02:03.456Z`.
    static func rfc3339(_ time: timespec) -> String {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(time.tv_nsec / 1_000_000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
