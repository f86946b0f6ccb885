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
    .executable(name: "pilotfish", targets: ["PilotfishCLI"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
  ],
  targets: [
    // C shim over <nftables/libnftables.h> and <libmnl/libmnl.h>, plus the netlink message builders.
    .target(
      name: "CNetfilter",
      linkerSettings: [.linkedLibrary("nftables"), .linkedLibrary("mnl")]
    ),
    // Rule model, renderers (nft, iptables-restore), backends, TPROXY routing, validation, cleanup.
    .target(
      name: "Interception",
      dependencies: [
        "CNetfilter",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    // The `pilotfish` executable: flags to library calls, no logic.
    .executableTarget(
      name: "PilotfishCLI",
      dependencies: [
        "Interception",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "InterceptionTests",
      dependencies: ["Interception"],
      exclude: ["Golden"],
      swiftSettings: swiftSettings
    ),
    // Scenario tests: real rules in network namespaces the tests create, real processes.
    .testTarget(
      name: "EndToEndTests",
      dependencies: ["Interception"],
      exclude: ["Helpers"],
      swiftSettings: swiftSettings
    ),
  ]
)
