import Benchmark
import EthicalGateway
import NIOHTTP1

/// Route matching on tables of 10, 1,000 and 10,000 routes: the table is a host map and a
/// path-segment trie, so a match should cost the same whatever the number of routes.
///
/// Each table mixes what configurations hold: three quarters path prefixes, one quarter exact
/// paths, every tenth route on a host of its own (with the prefix `/api`), every seventh limited to a method.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )
    let headers: HTTPHeaders = ["host": "example.com", "user-agent": "benchmark", "accept": "*/*"]
    for count in [10, 1_000, 10_000] {
        let table = makeTable(routes: count)
        let middle = count / 2
        let prefixPath = "/service-\(middle - middle % 4 + 2)/v1/orders/42"
        let exactPath = "/service-\(middle - middle % 4)/status"
        Benchmark("match prefix, \(count) routes") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(table.match(host: "example.com", path: prefixPath[...], method: .GET, headers: headers))
            }
        }
        Benchmark("match exact, \(count) routes") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(table.match(host: "example.com", path: exactPath[...], method: .GET, headers: headers))
            }
        }
        Benchmark("match host, \(count) routes") { benchmark in
            let host = "tenant-\(middle - middle % 10 + 5).example.com"
            for _ in benchmark.scaledIterations {
                blackHole(table.match(host: host, path: "/api/items/7", method: .GET, headers: headers))
            }
        }
        Benchmark("no match, \(count) routes") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(table.match(host: "example.com", path: "/unknown/path/here", method: .GET, headers: headers))
            }
        }
    }
}

/// A table of `routes` routes (see the file's comment for the mix); the target is the route's index.
func makeTable(routes count: Int) -> RouteTable<Int> {
    var entries: [RouteEntry<Int>] = []
    entries.reserveCapacity(count)
    for index in 0..<count {
        let hosts = index % 10 == 5 ? [HostPattern("tenant-\(index).example.com")!] : []
        let path: PathCondition =
            index % 4 == 0
            ? .exact("/service-\(index)/status")
            : PathCondition(path: nil, pathPrefix: hosts.isEmpty ? "/service-\(index)/v1" : "/api")
        entries.append(
            RouteEntry(
                name: "route-\(index)",
                jsonPath: "$.routes[\(index)]",
                hosts: hosts,
                path: path,
                methods: index % 7 == 0 ? ["GET", "HEAD"] : nil,
                target: index
            )
        )
    }
    do {
        return try RouteTable.build(entries)
    } catch {
        fatalError("the benchmark's route table does not build: \(error)")
    }
}
