// swift-tools-version: 6.1
// Tools-only package: builds the two protoc plugins that hack/gen-protos.sh runs
// (protoc-gen-swift and protoc-gen-grpc-swift-2). It is not part of the pilotfish build.
import PackageDescription

let package = Package(
  name: "pilotfish-protoc-plugins",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
  ],
  targets: []
)
