// swift-tools-version: 6.1
//
// swift-zmtp: ZeroMQ's wire protocol (ZMTP 3.x) in pure Swift.
//
// Layers, each a module; a dependency only ever points down:
//   ZMTPWire     sans-IO wire core: greeting, framing, commands, metadata, mechanisms (NULL, CURVE),
//                ZAP codecs, keys, Z85, connection
//   ZeekCluster  Zeek's rules and formats: CURVE configuration, log batches, broker-bin-v1 events
//   ZMTPEngine   syscalls, the epoll reactor, tcp/ipc transports
//   ZMTP         sockets (PUSH, PULL, PUB, SUB, XPUB, XSUB), options, routing, monitor, poller
//   ZMTPProxy    the proxy (zmq_proxy_steerable)
//   ZMTPMetrics  swift-metrics for proxies and sockets (Zeek's metric names)
//   ZMTPConformance  `zmtp conform`'s scripted peer and case battery (on ZMTPWire and ZMTPEngine's
//                raw streams; no sockets)
//   ZMTPTool     the `zmtp` executable
// ZMTPFuzzing holds the fuzz harnesses, shared by Fuzz/ (libFuzzer) and the unit tests that replay
// Fuzz/FailCases/.
import PackageDescription

let package = Package(
    name: "swift-zmtp",
    products: [
        .library(name: "ZMTP", targets: ["ZMTP"]),
        .library(name: "ZMTPProxy", targets: ["ZMTPProxy"]),
        .library(name: "ZMTPMetrics", targets: ["ZMTPMetrics"]),
        .library(name: "ZMTPWire", targets: ["ZMTPWire"]),
        .library(name: "ZMTPFuzzing", targets: ["ZMTPFuzzing"]),
        .executable(name: "zmtp", targets: ["ZMTPTool"]),
        .executable(name: "zmtp-wire-bench", targets: ["WireBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "ZMTPWire", dependencies: ["CSodium"]),
        .target(name: "CZMTPSystem"),
        .target(name: "ZMTPEngine", dependencies: ["ZMTPWire", "CZMTPSystem"]),
        .target(name: "ZMTP", dependencies: ["ZMTPWire", "ZMTPEngine"]),
        .target(name: "ZMTPProxy", dependencies: ["ZMTP", "ZMTPEngine"]),
        .target(
            name: "ZMTPMetrics",
            dependencies: ["ZMTP", "ZMTPProxy", .product(name: "Metrics", package: "swift-metrics")]),
        .target(name: "ZMTPFuzzing", dependencies: ["ZMTPWire"]),
        .target(name: "ZeekCluster", dependencies: ["ZMTPWire"]),
        .target(name: "ZMTPConformance", dependencies: ["ZMTPWire", "ZMTPEngine"]),
        .executableTarget(
            name: "ZMTPTool",
            dependencies: [
                "ZMTPWire",
                "ZMTP",
                "ZMTPProxy",
                "ZMTPMetrics",
                "ZeekCluster",
                "ZMTPConformance",
                "CSodium",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]
        ),
        .executableTarget(
            name: "WireBench",
            dependencies: ["ZMTPWire", "CSodium"],
            path: "Benchmarks/WireBench"
        ),
        .testTarget(name: "ZMTPWireTests", dependencies: ["ZMTPWire", "ZMTPFuzzing"]),
        // Helpers shared by the socket-level test targets (not a product).
        .target(name: "ZMTPTestSupport", dependencies: ["ZMTP"], path: "Tests/ZMTPTestSupport"),
        .testTarget(name: "InteropTests", dependencies: ["ZMTPWire", "ZMTP", "ZMTPTestSupport"], exclude: ["peer.py", "zeek_node.py", "conform_target.py"]),
        .testTarget(name: "ZMTPToolTests", dependencies: ["ZMTPTool"]),
        .testTarget(name: "ZeekClusterTests", dependencies: ["ZeekCluster", "ZMTPWire"]),
        .testTarget(name: "ZMTPEngineTests", dependencies: ["ZMTPEngine", "ZMTPWire"]),
        .testTarget(name: "ZMTPTests", dependencies: ["ZMTP", "ZMTPFuzzing", "ZMTPTestSupport"]),
        .testTarget(name: "ZMTPProxyTests", dependencies: ["ZMTPProxy", "ZMTP", "ZMTPTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
