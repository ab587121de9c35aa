/// State shared by every container of one strict decode: the issues found so far and, for each
/// JSON object, which keys the configuration types asked for, so unknown keys can be reported.
final class ConfigDecodingSession {
    /// The JSON path of the decoded value within its file, e.g. `$.backends.site.config`.
    let basePath: String

    init(basePath: String = "$") {
        self.basePath = basePath
    }

    /// The JSON path of a coding path within this session's file.
    func path(_ codingPath: [any CodingKey]) -> String {
        jsonPath(codingPath, base: self.basePath)
    }

    private struct ObjectRecord {
        var path: String
        var presentKeys: [String]
        var requestedKeys: Set<String>
    }

    private var objects: [String: ObjectRecord] = [:]
    private var objectOrder: [String] = []
    private var abortedPaths: [String] = []
    private(set) var issues: [ConfigIssue] = []

    func registerObject(path: String, keys: [String]) {
        guard self.objects[path] == nil else { return }
        self.objects[path] = ObjectRecord(path: path, presentKeys: keys.sorted(), requestedKeys: [])
        self.objectOrder.append(path)
    }

    func requested(key: String, inObjectAt path: String) {
        self.objects[path]?.requestedKeys.insert(key)
    }

    /// Records an error thrown while decoding the value at `path`; objects inside that value
    /// stopped decoding early, so their unread keys are not reported as unknown.
    func record(_ error: any Error, decodingValueAt path: String) {
        self.abortedPaths.append(path)
        let issue = self.issue(for: error, fallbackPath: path)
        if !self.issues.contains(issue) {
            self.issues.append(issue)
        }
    }

    func record(_ issue: ConfigIssue) {
        if !self.issues.contains(issue) {
            self.issues.append(issue)
        }
    }

    /// Every issue: decoding errors first, then unknown keys of objects that decoded completely.
    func allIssues() -> [ConfigIssue] {
        var result = self.issues
        for path in self.objectOrder {
            guard let object = self.objects[path], !self.isAborted(path) else { continue }
            let unknown = object.presentKeys.filter { !object.requestedKeys.contains($0) }
            guard !unknown.isEmpty else { continue }
            let expected = object.requestedKeys.sorted().joined(separator: ", ")
            for key in unknown {
                let keyPath = jsonPath([AnyCodingKey(key)], base: path)
                result.append(
                    ConfigIssue(path: keyPath, message: "unknown key \"\(key)\" (expected one of: \(expected))")
                )
            }
        }
        return result
    }

    private func isAborted(_ path: String) -> Bool {
        self.abortedPaths.contains { aborted in
            guard path.hasPrefix(aborted) else { return false }
            let rest = path.dropFirst(aborted.count)
            return rest.isEmpty || rest.first == "." || rest.first == "["
        }
    }

    func issue(for error: any Error, fallbackPath: String) -> ConfigIssue {
        switch error {
        case let error as ConfigIssueError:
            return error.issue
        case let DecodingError.keyNotFound(key, context):
            return ConfigIssue(
                path: self.path(context.codingPath),
                message: "missing required key \"\(key.stringValue)\""
            )
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context):
            return ConfigIssue(path: self.path(context.codingPath), message: context.debugDescription)
        case let error as ConfigValidationError:
            return error.issues.first ?? ConfigIssue(path: fallbackPath, message: "invalid value")
        default:
            return ConfigIssue(path: fallbackPath, message: "\(error)")
        }
    }
}

/// Appends keys to an already rendered JSON path.
func jsonPath(_ keys: [any CodingKey], base: String) -> String {
    let rendered = jsonPath(keys)
    return base + rendered.dropFirst()
}

/// An error that already knows its JSON path and message.
public struct ConfigIssueError: Error, Sendable {
    public var issue: ConfigIssue

    public init(_ issue: ConfigIssue) {
        self.issue = issue
    }
}

extension Decoder {
    /// An error for the value being decoded, e.g. `throw decoder.invalid("expected a port between 0 and 65535")`.
    public func invalid(_ message: String) -> ConfigIssueError {
        ConfigIssueError(ConfigIssue(path: self.jsonPathDescription, message: message))
    }

    /// The JSON path of the value this decoder decodes, e.g. `$.routes[0].match`.
    public var jsonPathDescription: String {
        let base = (self as? StrictConfigDecoder)?.session.basePath ?? "$"
        return jsonPath(self.codingPath, base: base)
    }
}
