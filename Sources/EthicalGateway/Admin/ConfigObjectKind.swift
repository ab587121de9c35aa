/// The kinds of named objects the admin API edits one at a time, under `/config/{kind}/{name}`.
/// Routes are an array of objects with a `"name"`; the others are objects keyed by name.
public enum ConfigObjectKind: String, Sendable, CaseIterable {
    case routes, backends, filters, issuers

    /// The kind's name in messages, e.g. `route`.
    var singular: String { String(self.rawValue.dropLast()) }

    /// The object `name` in `document`.
    func find(_ name: String, in document: JSONValue) -> JSONValue? {
        switch self {
        case .routes:
            guard case .array(let routes)? = document[self.rawValue] else { return nil }
            return routes.first { $0["name"]?.stringValue == name }
        case .backends, .filters, .issuers:
            return document[self.rawValue]?[name]
        }
    }

    /// `document` with the object `name` replaced by `value`, or added (a route at the end of
    /// the list). A route's `"name"` is set from the URL; one that says otherwise is refused.
    func replacing(
        _ name: String,
        with value: JSONValue,
        in document: JSONValue
    ) -> Result<JSONValue, ConfigValidationError> {
        guard case .object(var top) = document else {
            return .failure(ConfigValidationError([ConfigIssue(path: "$", message: "expected an object")]))
        }
        guard case .object(var object) = value else {
            return .failure(
                ConfigValidationError([
                    ConfigIssue(
                        path: self.path(of: name, in: document),
                        message: "expected an object, found \(value.kindDescription)"
                    )
                ])
            )
        }
        switch self {
        case .routes:
            if let given = object["name"], given != .string(name) {
                return .failure(
                    ConfigValidationError([
                        ConfigIssue(
                            path: "\(self.path(of: name, in: document)).name",
                            message:
                                "the route's name must be \"\(name)\", as in the URL; found \(given.kindDescription)"
                        )
                    ])
                )
            }
            object["name"] = .string(name)
            var routes: [JSONValue] = []
            if case .array(let existing)? = top["routes"] { routes = existing }
            if let index = routes.firstIndex(where: { $0["name"]?.stringValue == name }) {
                routes[index] = .object(object)
            } else {
                routes.append(.object(object))
            }
            top["routes"] = .array(routes)
        case .backends, .filters, .issuers:
            var members: [String: JSONValue] = [:]
            if case .object(let existing)? = top[self.rawValue] { members = existing }
            members[name] = .object(object)
            top[self.rawValue] = .object(members)
        }
        return .success(.object(top))
    }

    /// `document` without the object `name`.
    func removing(_ name: String, from document: JSONValue) -> JSONValue {
        guard case .object(var top) = document else { return document }
        switch self {
        case .routes:
            if case .array(let routes)? = top["routes"] {
                top["routes"] = .array(routes.filter { $0["name"]?.stringValue != name })
            }
        case .backends, .filters, .issuers:
            if case .object(var members)? = top[self.rawValue] {
                members[name] = nil
                top[self.rawValue] = .object(members)
            }
        }
        return .object(top)
    }

    /// The JSON path the object has (or would have) in `document`.
    func path(of name: String, in document: JSONValue) -> String {
        switch self {
        case .routes:
            guard case .array(let routes)? = document["routes"] else { return "$.routes[0]" }
            let index = routes.firstIndex { $0["name"]?.stringValue == name } ?? routes.count
            return "$.routes[\(index)]"
        case .backends, .filters, .issuers:
            return "$.\(self.rawValue).\(name)"
        }
    }
}
