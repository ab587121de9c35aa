public import Foundation

/// A response as curl received it.
public struct CurlResponse: Sendable {
    public var status: Int
    /// `1.1` or `2`.
    public var httpVersion: String
    /// Header names lower-cased, in order.
    public var headers: [(name: String, value: String)]
    public var body: Data
    public var bodyText: String { String(decoding: self.body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        self.headers.first { $0.name == name.lowercased() }?.value
    }
}

/// Runs the real curl against the gateway: the independent client of the live tests.
public enum Curl {
    /// Requests `url`. `arguments` are extra curl options (`--http2`, `-H`, `--resolve`, ...).
    /// TLS verification is off unless `arguments` brings `--cacert`.
    public static func request(
        _ url: String,
        _ arguments: [String] = [],
        timeout: TimeInterval = 20
    ) async throws -> CurlResponse {
        let scratch = try TemporaryDirectory(prefix: "curl")
        defer { scratch.remove() }
        let headersFile = scratch.url.appendingPathComponent("headers").path
        let bodyFile = scratch.url.appendingPathComponent("body").path
        var options = [
            "-sS", "--max-time", "\(Int(timeout))", "-D", headersFile, "-o", bodyFile, "-w",
            "%{http_code} %{http_version}",
        ]
        if !arguments.contains("--cacert") { options.append("-k") }
        let output = try await ProcessRunner.run("curl", options + arguments + [url], timeout: timeout + 5)
        guard output.exitCode == 0 else {
            throw CurlError(
                exitCode: output.exitCode,
                message: "\(url) \(arguments.prefix(8)): \(output.standardError)"
            )
        }
        let parts = output.standardOutput.split(separator: " ")
        let rawHeaders = (try? String(contentsOfFile: headersFile, encoding: .utf8)) ?? ""
        // With redirects or 100-continue there may be several header blocks; keep the last.
        let lastBlock = rawHeaders.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.last ?? ""
        let headers: [(name: String, value: String)] = lastBlock.components(separatedBy: "\r\n").dropFirst().compactMap
        { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return CurlResponse(
            status: Int(parts.first ?? "") ?? 0,
            httpVersion: parts.count > 1 ? String(parts[1]) : "",
            headers: headers,
            body: (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))) ?? Data()
        )
    }
}

public struct CurlError: Error, CustomStringConvertible {
    public var exitCode: Int32
    public var message: String
    public var description: String { "curl exited with \(self.exitCode): \(self.message)" }
}
