/// The gateway's version, printed by `ethical-gateway version` and sent nowhere else.
public enum GatewayVersion {
    public static let current = "0.1.0"
}
