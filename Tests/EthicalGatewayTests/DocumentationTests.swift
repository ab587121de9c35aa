import Foundation
import Testing

@Suite("Documentation")
struct DocumentationTests {
    /// Every property name anywhere in the JSON Schema.
    static func schemaKeys(_ value: Any, into keys: inout Set<String>) {
        if let object = value as? [String: Any] {
            if let properties = object["properties"] as? [String: Any] {
                keys.formUnion(properties.keys.filter { !$0.hasPrefix("$") })
            }
            for child in object.values { Self.schemaKeys(child, into: &keys) }
        } else if let array = value as? [Any] {
            for child in array { Self.schemaKeys(child, into: &keys) }
        }
    }

    @Test("the README's configuration reference documents every key of the schema")
    func readmeCoversSchema() throws {
        let schemaData = try Data(contentsOf: repositoryRoot.appendingPathComponent("config/gateway.schema.json"))
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        var keys = Set<String>()
        Self.schemaKeys(try JSONSerialization.jsonObject(with: schemaData), into: &keys)
        #expect(keys.count > 30)
        let undocumented = keys.filter { !readme.contains("`\($0)`") && !readme.contains(".\($0)`") }.sorted()
        #expect(undocumented.isEmpty, "not in README.md: \(undocumented)")
    }

    @Test("the README's test command is what CI runs")
    func ciRunsReadmeCommand() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let ci = try String(contentsOf: repositoryRoot.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(readme.contains("swift test                               # run the whole test suite"))
        #expect(ci.split(separator: "\n").last == "swift test")
    }
}
