public import Foundation
public import Logging

/// Applies configuration changes to a running gateway, one at a time: a reload of the file
/// (SIGHUP, `POST /reload`, the file watcher), a whole new configuration (`PUT /config`), or one
/// object changed (`PUT|DELETE /config/{kind}/{name}`). Every change is built and validated whole
/// off the event loops before anything changes; a change that fails leaves the running
/// configuration (and the file) as they were and says why. An accepted admin change is written
/// to the config file atomically, so it survives a restart.
public actor ConfigController {
    public let configURL: URL
    private let builder: GatewayRuntimeBuilder
    private let server: GatewayServer
    private let logger: Logger
    /// Whether a change is being made; an actor runs other calls while one awaits, so changes
    /// queue here (in arrival order) and each sees the result of the one before.
    private var changing = false
    private var queued: [CheckedContinuation<Void, Never>] = []

    /// Runs `change` once no other change runs: its `If-Match` check, build, write and apply
    /// see exactly the configuration the previous change left.
    private func exclusively<T: Sendable>(_ change: () async -> T) async -> T {
        if self.changing {
            await withCheckedContinuation { self.queued.append($0) }
        } else {
            self.changing = true
        }
        defer {
            if self.queued.isEmpty {
                self.changing = false
            } else {
                self.queued.removeFirst().resume()
            }
        }
        return await change()
    }

    public init(configURL: URL, builder: GatewayRuntimeBuilder, server: GatewayServer, logger: Logger) {
        self.configURL = configURL
        self.builder = builder
        self.server = server
        self.logger = logger
    }

    /// The configuration in service.
    public var current: ConfigSource { self.server.runtime.source }

    /// What a change did.
    public struct Outcome: Sendable {
        public var version: String
        public var previousVersion: String
        public var diff: ConfigDiff
        /// What the change does not do yet (e.g. a new admin address waits for a restart).
        public var warnings: [String] = []

        /// The admin API's answer.
        public var json: JSONValue {
            var members: [String: JSONValue] = [
                "version": .string(self.version), "previousVersion": .string(self.previousVersion),
                "changes": self.diff.json,
            ]
            if !self.warnings.isEmpty { members["warnings"] = .array(self.warnings.map(JSONValue.string)) }
            return .object(members)
        }
    }

    /// Why a change was refused.
    public enum Refusal: Error, Sendable {
        /// The candidate configuration is invalid; nothing changed.
        case invalid(ConfigValidationError)
        /// `If-Match` named another version (412).
        case stale(current: String)
        /// A change of an existing object (or of the whole config) came without `If-Match` (428).
        case preconditionRequired
        /// The object does not exist (404).
        case notFound(String)
        /// The file could not be written; nothing changed.
        case persistence(String)
    }

    // MARK: Reads

    /// One object of the configuration in service: `kind` is `routes`, `backends`, `filters`
    /// or `issuers`.
    public func object(_ kind: ConfigObjectKind, named name: String) -> JSONValue? {
        kind.find(name, in: self.current.document)
    }

    /// Builds `data` against the configuration in service without applying it: every issue, or
    /// what it would change.
    public func validate(_ data: Data) async -> Result<ConfigDiff, ConfigValidationError> {
        let current = self.server.runtime
        var checker = self.builder
        checker.createDevelopmentCertificates = false
        do {
            let candidate = try await checker.load(data: data, previous: current)
            await candidate.shutdownNew()
            return .success(ConfigDiff(from: current.source.document, to: candidate.source.document))
        } catch {
            return .failure(Self.validationError(error))
        }
    }

    // MARK: Changes

    /// Re-reads the config file and applies it (SIGHUP, `POST /reload`, the watcher). An
    /// unchanged file still re-reads what it names (certificates, key and token files).
    @discardableResult
    public func reloadFile(trigger: String) async -> Result<Outcome, Refusal> {
        await self.exclusively { await self.reloadFileNow(trigger: trigger) }
    }

    private func reloadFileNow(trigger: String) async -> Result<Outcome, Refusal> {
        let data: Data
        do {
            data = try ConfigLoader.read(self.configURL)
        } catch {
            return self.refused(.invalid(Self.validationError(error)), trigger: trigger)
        }
        return await self.apply(data, trigger: trigger, persist: false)
    }

    /// Replaces the whole configuration with `data` (`PUT /config`), when `ifMatch` names the
    /// version in service.
    public func replace(with data: Data, ifMatch: String?) async -> Result<Outcome, Refusal> {
        await self.exclusively { await self.replaceNow(with: data, ifMatch: ifMatch) }
    }

    private func replaceNow(with data: Data, ifMatch: String?) async -> Result<Outcome, Refusal> {
        guard let ifMatch else { return self.refused(.preconditionRequired, trigger: "admin") }
        let current = self.current
        guard Self.matches(ifMatch, tag: "\"\(current.version)\"") else {
            return self.refused(.stale(current: current.version), trigger: "admin")
        }
        return await self.apply(data, trigger: "admin", persist: true)
    }

    /// Creates or replaces one object (`PUT /config/{kind}/{name}`). Replacing an existing one
    /// needs `ifMatch` (its entity tag, or `*`); creating one refuses an `ifMatch` other than
    /// absent.
    public func put(
        _ value: JSONValue,
        kind: ConfigObjectKind,
        name: String,
        ifMatch: String?
    ) async -> Result<(Outcome, created: Bool), Refusal> {
        await self.exclusively { await self.putNow(value, kind: kind, name: name, ifMatch: ifMatch) }
    }

    private func putNow(
        _ value: JSONValue,
        kind: ConfigObjectKind,
        name: String,
        ifMatch: String?
    ) async -> Result<(Outcome, created: Bool), Refusal> {
        let document = self.current.document
        let existing = kind.find(name, in: document)
        if let existing {
            guard let ifMatch else { return self.refused(.preconditionRequired, trigger: "admin") }
            guard Self.matches(ifMatch, tag: existing.entityTag) else {
                return self.refused(.stale(current: existing.entityTag), trigger: "admin")
            }
        } else if ifMatch != nil {
            return self.refused(.stale(current: "none"), trigger: "admin")
        }
        let changed: JSONValue
        switch kind.replacing(name, with: value, in: document) {
        case .success(let updated): changed = updated
        case .failure(let error): return self.refused(.invalid(error), trigger: "admin")
        }
        return await self.apply(changed.encoded(pretty: true), trigger: "admin", persist: true).map {
            ($0, existing == nil)
        }
    }

    /// Deletes one object (`DELETE /config/{kind}/{name}`), when `ifMatch` is its entity tag
    /// (or `*`).
    public func delete(kind: ConfigObjectKind, name: String, ifMatch: String?) async -> Result<Outcome, Refusal> {
        await self.exclusively { await self.deleteNow(kind: kind, name: name, ifMatch: ifMatch) }
    }

    private func deleteNow(kind: ConfigObjectKind, name: String, ifMatch: String?) async -> Result<Outcome, Refusal> {
        let document = self.current.document
        guard let existing = kind.find(name, in: document) else {
            return self.refused(.notFound("no \(kind.singular) named \"\(name)\""), trigger: "admin")
        }
        guard let ifMatch else { return self.refused(.preconditionRequired, trigger: "admin") }
        guard Self.matches(ifMatch, tag: existing.entityTag) else {
            return self.refused(.stale(current: existing.entityTag), trigger: "admin")
        }
        return await self.apply(
            kind.removing(name, from: document).encoded(pretty: true),
            trigger: "admin",
            persist: true
        )
    }

    /// Builds `data` with the runtime in service as the previous one, writes it to the file when
    /// `persist`, and puts it in service. On a failure after the write, the old file comes back.
    private func apply(_ data: Data, trigger: String, persist: Bool) async -> Result<Outcome, Refusal> {
        let previous = self.server.runtime
        let runtime: GatewayRuntime
        do {
            runtime = try await self.builder.load(data: data, previous: previous)
        } catch {
            return self.refused(.invalid(Self.validationError(error)), trigger: trigger)
        }
        if trigger == "admin", previous.configuration.admin != nil, runtime.configuration.admin == nil {
            // The API must not lock its operator out; turning it off is a file edit and SIGHUP.
            await runtime.shutdownNew()
            let issue = ConfigIssue(
                path: "$.admin",
                message:
                    "the change would remove the admin API it came through; to turn the API off, edit the file and send SIGHUP"
            )
            return self.refused(.invalid(ConfigValidationError([issue])), trigger: trigger)
        }
        var warnings: [String] = []
        if let before = previous.configuration.admin, let after = runtime.configuration.admin,
            before.address != after.address || before.port != after.port
        {
            warnings.append(
                "the admin listener stays on \(before.address):\(before.port) until the gateway restarts (the new address is \(after.address):\(after.port))"
            )
        }
        if persist {
            do {
                try AtomicFile.write(data, to: self.configURL)
            } catch {
                await runtime.shutdownNew()
                return self.refused(
                    .persistence("the configuration file could not be written: \(error)"),
                    trigger: trigger
                )
            }
        }
        do {
            try await self.server.apply(runtime)
        } catch {
            if persist { try? AtomicFile.write(previous.source.data, to: self.configURL) }
            return self.refused(.invalid(Self.validationError(error)), trigger: trigger)
        }
        let outcome = Outcome(
            version: runtime.source.version,
            previousVersion: previous.source.version,
            diff: ConfigDiff(from: previous.source.document, to: runtime.source.document),
            warnings: warnings
        )
        for warning in warnings { self.logger.warning("\(warning)") }
        self.server.metrics.countReload(succeeded: true)
        self.logger.notice(
            "configuration applied",
            metadata: [
                "trigger": "\(trigger)", "version": "\(runtime.source.shortVersion)",
                "previous-version": "\(previous.source.shortVersion)", "changes": "\(outcome.diff.summary)",
            ]
        )
        return .success(outcome)
    }

    private func refused<Success>(_ refusal: Refusal, trigger: String) -> Result<Success, Refusal> {
        switch refusal {
        case .invalid(let error):
            self.server.metrics.countReload(succeeded: false)
            self.logger.error(
                "configuration change refused; the running configuration stays",
                metadata: ["trigger": "\(trigger)", "version": "\(self.current.shortVersion)", "errors": "\(error)"]
            )
        case .persistence(let reason):
            self.server.metrics.countReload(succeeded: false)
            self.logger.error(
                "configuration change refused",
                metadata: ["trigger": "\(trigger)", "reason": "\(reason)"]
            )
        case .stale, .preconditionRequired, .notFound:
            break
        }
        return .failure(refusal)
    }

    /// `error` as configuration issues (anything that is not one is an issue at `$`).
    static func validationError(_ error: any Error) -> ConfigValidationError {
        (error as? ConfigValidationError) ?? ConfigValidationError([ConfigIssue(path: "$", message: "\(error)")])
    }

    /// Whether an `If-Match` value names `tag` (or is `*`); a list of tags is accepted. Weak
    /// tags never match (RFC 9110 13.1.1 compares strongly).
    static func matches(_ ifMatch: String, tag: String) -> Bool {
        ifMatch.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || trimmed == tag
        }
    }
}
