/// One problem found in a configuration: where it is (a JSON path such as `$.routes[2].backend`)
/// and what was expected there.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The JSON path of the offending value, `$` for the document itself.
    public var path: String
    /// What is wrong, in words a user can act on.
    public var message: String

    /// Longest message kept: a bad value can be megabytes long, and an error that echoes it
    /// whole buries the point (and fills logs).
    static let maximumMessageLength = 600

    public init(path: String, message: String) {
        self.path = path
        if message.utf8.count > Self.maximumMessageLength {
            let kept = message.prefix(Self.maximumMessageLength - 100)
            self.message = "\(kept)... (\(message.count - kept.count) more characters)"
        } else {
            self.message = message
        }
    }

    public var description: String { "\(self.path): \(self.message)" }
}

/// A configuration was rejected. Carries every issue found, not only the first.
public struct ConfigValidationError: Error, Sendable, CustomStringConvertible {
    /// All issues, in document order where that is known.
    public var issues: [ConfigIssue]
    /// What could be decoded despite the issues, so later checks (plugins, certificates) can
    /// still run and report their issues in the same pass.
    var partialConfiguration: GatewayConfiguration?

    public init(_ issues: [ConfigIssue]) {
        self.issues = issues
    }

    init(_ issues: [ConfigIssue], partialConfiguration: GatewayConfiguration?) {
        self.issues = issues
        self.partialConfiguration = partialConfiguration
    }

    public var description: String {
        let noun = self.issues.count == 1 ? "error" : "errors"
        return "configuration has \(self.issues.count) \(noun):\n"
            + self.issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Renders a coding path as a JSON path, e.g. `$.listeners[1].port`.
func jsonPath(_ codingPath: [any CodingKey]) -> String {
    var path = "$"
    for key in codingPath {
        if let index = key.intValue {
            path += "[\(index)]"
        } else if key.stringValue.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
            path += ".\(key.stringValue)"
        } else {
            path += "[\"\(key.stringValue)\"]"
        }
    }
    return path
}
