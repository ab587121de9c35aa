/// The access log: one JSON line per request (the top-level `"accessLog"` object; absent: no
/// access log). Routes opt out with `"accessLog": false`.
///
/// ```json
/// "accessLog": { "output": "stdout", "sampleRate": 1 }
/// ```
public struct AccessLogConfiguration: Sendable, Decodable, Equatable {
    /// `"stdout"` (default), `"stderr"`, or a file (relative to the config's folder), appended to.
    public var output: String = "stdout"
    /// The share of requests logged, 0 to 1 (default 1); responses with a 5xx status are always
    /// logged.
    public var sampleRate: Double = 1

    enum CodingKeys: String, CodingKey { case output, sampleRate }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let output = try container.decodeIfPresent(String.self, forKey: .output) {
            guard !output.isEmpty else {
                throw decoder.invalidValue(
                    at: container.codingPath + [CodingKeys.output],
                    "expected \"stdout\", \"stderr\" or a file path"
                )
            }
            self.output = output
        }
        if let rate = try container.decodeIfPresent(Double.self, forKey: .sampleRate) {
            guard (0...1).contains(rate) else {
                throw decoder.invalidValue(
                    at: container.codingPath + [CodingKeys.sampleRate],
                    "expected a number from 0 to 1, found \(rate)"
                )
            }
            self.sampleRate = rate
        }
    }
}
