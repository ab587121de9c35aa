import Testing

@testable import RESPClient

@Suite("Redis endpoint URLs")
struct RedisEndpointTests {
    @Test("parses user, password, host, port and database")
    func parsesFullURL() throws {
        let endpoint = try RedisEndpoint(url: "rediss://alice:s%40cret@cache.internal:6380/2")
        #expect(endpoint.useTLS)
        #expect(endpoint.username == "alice")
        #expect(endpoint.password == "s@cret")
        #expect(endpoint.host == "cache.internal")
        #expect(endpoint.port == 6380)
        #expect(endpoint.database == 2)
        #expect(endpoint.description == "rediss://alice@cache.internal:6380/2")
    }

    @Test("defaults and password-only URLs hide the password")
    func defaults() throws {
        let endpoint = try RedisEndpoint(url: "redis://:topsecret@[::1]")
        #expect(!endpoint.useTLS)
        #expect(endpoint.username == nil)
        #expect(endpoint.password == "topsecret")
        #expect(endpoint.host == "::1")
        #expect(endpoint.port == 6379)
        #expect(endpoint.database == 0)
        #expect(!endpoint.description.contains("topsecret"))
    }

    @Test(
        "rejects bad URLs saying what is wrong",
        arguments: [
            ("localhost:6379", "not a Redis URL"), ("http://h", "scheme"), ("redis://h:99999", "port"),
            ("redis://h/x", "database"), ("redis://:p@", "no host"),
        ]
    )
    func rejectsBadURLs(url: String, mention: String) {
        #expect {
            _ = try RedisEndpoint(url: url)
        } throws: { error in
            "\(error)".contains(mention)
        }
    }

    @Test("the configuration's credentials override the URL's")
    func configurationOverrides() throws {
        var configuration = RedisClientConfiguration(endpoint: try RedisEndpoint(url: "redis://bob:old@h"))
        #expect(configuration.effectivePassword == "old")
        configuration.password = "new"
        configuration.username = "carol"
        #expect(configuration.effectivePassword == "new")
        #expect(configuration.effectiveUsername == "carol")
    }
}
