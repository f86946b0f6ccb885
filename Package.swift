// swift-tools-version: 6.1
// Pilotfish: a service-mesh sidecar (interception, agent, proxy, injector) in one package.
// Targets and the dependency arrows between them are fixed by the architecture document;
// more targets arrive with the work that needs them.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
  name: "pilotfish",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "pilotfish", targets: ["PilotfishCLI"]),
    .executable(name: "pilotfish-proxy", targets: ["PilotfishProxyCLI"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.30.0"),
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.0.0"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.0.0"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.0.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.30.0"),
    .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
  ],
  targets: [
    // Generated Swift for a hand-written, wire-compatible subset of the Envoy v3 API and Istio's CA service.
    // Inputs and the generator live under hack/protos and hack/gen-protos.sh; never edit Generated/ by hand.
    .target(
      name: "EnvoyAPI",
      dependencies: [
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
      ]
    ),
    // C shim over <nftables/libnftables.h> and <libmnl/libmnl.h>, plus the netlink message builders.
    .target(
      name: "CNetfilter",
      linkerSettings: [.linkedLibrary("nftables"), .linkedLibrary("mnl")]
    ),
    // C shim over Google's RE2 (libre2-dev): linear-time regexes for safe_regex, stats tags and filters.
    .target(
      name: "CRE2",
      linkerSettings: [.linkedLibrary("re2"), .linkedLibrary("stdc++")]
    ),
    // Tiny leaf utilities both sides share: the one ordered JSONValue (strict JSON parser, printer, YAML
    // conversion with an alias-expansion budget) and the domain-error pattern. No I/O, no protobuf, and it
    // imports nothing of ours.
    .target(
      name: "PilotfishKit",
      dependencies: [
        .product(name: "OrderedCollections", package: "swift-collections"),
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: swiftSettings
    ),
    // Rule model, renderers (nft, iptables-restore), backends, TPROXY routing, validation, cleanup.
    .target(
      name: "Interception",
      dependencies: [
        "PilotfishKit",
        "CNetfilter",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    // Pod mutation (pure), JSON Patch, `pilotfish inject` documents, the AdmissionReview webhook.
    .target(
      name: "Injector",
      dependencies: [
        "PilotfishKit",
        .product(name: "OrderedCollections", package: "swift-collections"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    // The proxy's L4 core without I/O: listener and cluster models, the listener manager, filter-chain
    // match, tcp_proxy's config and stats, clusters (DNS resolution on NIO's thread pool), load balancing,
    // drain, the stats store.
    .target(
      name: "ProxyCore",
      dependencies: [
        "PilotfishKit",
        "EnvoyAPI",
        "CRE2",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    // The data path's I/O: one reactor per worker (epoll, timer wheel, eventfd), the connection slab,
    // `Connection` and `TransportSocket`, listening sockets and the accept path (hand-off, listener
    // filters), tcp_proxy on the reactor. No NIO channels.
    // C shim over epoll, eventfd and accept4 (not exported by Glibc's Swift module).
    .target(name: "CReactor"),
    .target(
      name: "ProxyEngine",
      dependencies: [
        "ProxyCore",
        "CReactor",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    // The HTTP connection manager: a strict framing-only HTTP/1.1 codec over the receive buffer, routing,
    // the router filter and upstream connection pools, as I/O-free cores on the reactor's connections.
    .target(
      name: "ProxyHTTP",
      dependencies: [
        "ProxyCore",
        "ProxyEngine",
        "EnvoyAPI",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    // ADS (delta and state of the world) over grpc-swift: subscriptions, versions, nonces, ACK/NACK, client-side
    // validation and reconnection with backoff, as a sans-IO state machine plus a `Service` doing the I/O.
    // Hands validated updates to a subscriber; knows nothing of the data path.
    .target(
      name: "XDSClient",
      dependencies: [
        "EnvoyAPI",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    // Composition root of the proxy: bootstrap loading and validation, xDS wiring (ADS, config files) into
    // the managers, the admin API, lifecycle.
    .target(
      name: "ProxyServer",
      dependencies: [
        "PilotfishKit",
        "EnvoyAPI",
        "ProxyCore",
        "ProxyEngine",
        "ProxyHTTP",
        "XDSClient",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    // The `pilotfish-proxy` executable: Envoy's command line → ProxyServer.
    .executableTarget(
      name: "PilotfishProxyCLI",
      dependencies: [
        "ProxyServer",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    // The agent (pilot-agent's role): pod metadata, bootstrap generation, proxy supervision, the status
    // server (15020), merged metrics (15090), app probers, the SDS server and certificate providers, the
    // xDS proxy.
    .target(
      name: "Agent",
      dependencies: [
        "PilotfishKit",
        "EnvoyAPI",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Subprocess", package: "swift-subprocess"),
      ],
      swiftSettings: swiftSettings
    ),
    // The `pilotfish` executable: flags to library calls, no logic.
    .executableTarget(
      name: "PilotfishCLI",
      dependencies: [
        "Interception",
        "Injector",
        "Agent",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    // Fakes and harnesses for tests only: loopback servers and clients (more with the fake xDS server).
    .target(
      name: "TestSupport",
      dependencies: [
        "EnvoyAPI",
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "PilotfishKitTests",
      dependencies: ["PilotfishKit"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "InterceptionTests",
      dependencies: ["Interception", "TestSupport"],
      exclude: ["Golden"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EnvoyAPITests",
      dependencies: ["EnvoyAPI", "TestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ProxyCoreTests",
      dependencies: [
        "ProxyCore", "EnvoyAPI", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ProxyEngineTests",
      dependencies: [
        "ProxyEngine", "ProxyCore", "EnvoyAPI", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ProxyHTTPTests",
      dependencies: [
        "ProxyHTTP", "ProxyCore", "ProxyEngine", "EnvoyAPI", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ProxyServerTests",
      dependencies: [
        "ProxyServer", "ProxyCore", "EnvoyAPI", "TestSupport",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
      ],
      exclude: ["Golden"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "XDSClientTests",
      dependencies: [
        "XDSClient", "EnvoyAPI", "TestSupport",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "AgentTests",
      dependencies: [
        "Agent", "PilotfishKit", "EnvoyAPI", "TestSupport",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      exclude: ["Golden", "Helpers"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "InjectorTests",
      dependencies: ["Injector", "PilotfishKit", "TestSupport"],
      exclude: ["Golden"],
      swiftSettings: swiftSettings
    ),
    // Scenario tests: real rules in network namespaces the tests create, real processes.
    .testTarget(
      name: "EndToEndTests",
      dependencies: ["Interception", "TestSupport"],
      exclude: ["Helpers"],
      swiftSettings: swiftSettings
    ),
  ]
)

// libFuzzer targets over the input parsers, built only by hack/fuzz.sh (PILOTFISH_FUZZ=1 with
// `--sanitize=fuzzer --sanitize=address` in .build-fuzz): normal builds and `swift build --build-tests`
// never see them. Each exports `LLVMFuzzerTestOneInput` and no `main` (libFuzzer provides it).
if Context.environment["PILOTFISH_FUZZ"] == "1" {
  let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
    ("HTTP1", ["ProxyHTTP"]),
    (
      "Bootstrap",
      ["ProxyServer", "ProxyCore", "EnvoyAPI", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    ("PodMetadata", ["Agent"]),
    ("AdmissionReview", ["Injector"]),
    ("CaptureFlags", ["Interception"]),
    (
      "Durations",
      [
        "Agent", "Interception", "ProxyCore", "EnvoyAPI",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    ("AdminQuery", ["ProxyServer", "ProxyCore", .product(name: "Logging", package: "swift-log")]),
  ]
  for target in fuzzTargets {
    package.targets.append(
      .executableTarget(
        name: "Fuzz\(target.name)", dependencies: target.dependencies, path: "Sources/Fuzz/\(target.name)",
        swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]))
  }
}
