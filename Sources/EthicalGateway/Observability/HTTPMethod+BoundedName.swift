public import NIOHTTP1

extension HTTPMethod {
    /// The standard methods by name, anything else as `OTHER`: what metric labels and span names
    /// use, so that a client inventing methods cannot make their number grow.
    public var boundedName: String {
        switch self {
        case .GET: return "GET"
        case .HEAD: return "HEAD"
        case .POST: return "POST"
        case .PUT: return "PUT"
        case .DELETE: return "DELETE"
        case .PATCH: return "PATCH"
        case .OPTIONS: return "OPTIONS"
        case .CONNECT: return "CONNECT"
        case .TRACE: return "TRACE"
        default: return "OTHER"
        }
    }
}
