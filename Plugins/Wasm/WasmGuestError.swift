/// Why a guest failed a request: the reason that goes to the log (the client gets a 500).
struct WasmGuestError: Error, CustomStringConvertible {
    private enum Reason {
        case trap(String)
        case outOfFuel(UInt64)
        case memoryLimit(pages: Int)
        case wallTime(milliseconds: Int64)
        case abi(String)
        case instantiation(String)
    }
    private let reason: Reason

    /// The guest trapped (`unreachable`, an out-of-bounds access, a division by zero, ...).
    static func trap(_ description: String) -> Self { Self(reason: .trap(description)) }
    /// The guest used up the request's fuel budget.
    static func outOfFuel(_ budget: UInt64) -> Self { Self(reason: .outOfFuel(budget)) }
    /// The guest tried to grow its memory past the configured number of pages.
    static func memoryLimit(pages: Int) -> Self { Self(reason: .memoryLimit(pages: pages)) }
    /// The guest ran past the request's wall-time limit.
    static func wallTime(milliseconds: Int64) -> Self { Self(reason: .wallTime(milliseconds: milliseconds)) }
    /// The guest called a host function against the ABI's rules.
    static func abi(_ description: String) -> Self { Self(reason: .abi(description)) }
    /// A new instance could not be made.
    static func instantiation(_ description: String) -> Self { Self(reason: .instantiation(description)) }

    /// Whether the failure is the guest running out of a limit (rather than a fault).
    var isLimit: Bool {
        switch self.reason {
        case .outOfFuel, .memoryLimit, .wallTime: true
        case .trap, .abi, .instantiation: false
        }
    }

    var description: String {
        switch self.reason {
        case .trap(let description): "the guest trapped: \(description)"
        case .outOfFuel(let budget): "the guest used up its fuel budget of \(budget) per request"
        case .memoryLimit(let pages): "the guest tried to grow its memory past its limit of \(pages) pages"
        case .wallTime(let milliseconds): "the guest ran past its wall-time limit of \(milliseconds) ms"
        case .abi(let description): "the guest broke the http-wasm ABI: \(description)"
        case .instantiation(let description): "the guest could not be instantiated: \(description)"
        }
    }
}
