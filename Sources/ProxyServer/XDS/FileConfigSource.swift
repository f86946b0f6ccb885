internal import EnvoyAPI
internal import Foundation
internal import Logging
internal import SwiftProtobuf

#if canImport(Glibc)
  internal import Glibc
#endif

/// Envoy's filesystem config source (`path_config_source`, as in its dynamic-config-fs example): a file
/// holding a `DiscoveryResponse` (YAML or JSON; `.pb` binary) with every listener or cluster, re-read when it
/// changes — including when a new file is moved into its place, which is how it should be replaced. Each
/// read is one state-of-the-world update: names no longer listed are removed. A file that cannot be read or
/// decoded, or an update the proxy rejects, is logged and counted; the last good config keeps serving.
struct FileConfigSource: Sendable {
  let path: String
  let type: ResourceType
  let resources: DynamicResources
  let logger: Logger
  var pollInterval: Duration = .milliseconds(250)

  /// The file's identity and contents' stamp: a change in any means "read it again".
  private struct Stamp: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var modifiedNanos: Int
  }

  /// Loads the file once (the first update, before the listeners start), then watches it until cancelled.
  func run(initialLoadDone: @Sendable () -> Void) async {
    var last: Stamp?
    var reported = false
    var first = true
    while !Task.isCancelled {
      let stamp = Self.stamp(path)
      if stamp != last {
        last = stamp
        if stamp == nil {
          if !reported {
            logger.warning(
              "config file is missing; keeping the current config",
              metadata: ["proxy.xds.type": "\(type.shortName)", "proxy.xds.path": "\(path)"])
            reported = true
          }
        } else {
          reported = false
          await load()
        }
      }
      if first {
        first = false
        initialLoadDone()
      }
      try? await Task.sleep(for: pollInterval)
    }
  }

  private static func stamp(_ path: String) -> Stamp? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Stamp(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
      modified: Int64(info.st_mtim.tv_sec), modifiedNanos: Int(info.st_mtim.tv_nsec))
  }

  /// Reads, decodes and applies the file.
  func load() async {
    let counter = resources.stats(type)
    let response: Envoy_Service_Discovery_V3_DiscoveryResponse
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: path))
      guard data.count <= 64 * 1024 * 1024 else {
        throw BootstrapError(
          code: .invalidValue, source: path, path: "", message: "larger than 64 MiB; not read")
      }
      if path.hasSuffix(".pb") {
        response = try Envoy_Service_Discovery_V3_DiscoveryResponse(serializedBytes: data)
      } else {
        let format: BootstrapLoader.Format = path.hasSuffix(".json") ? .json : .yaml
        response = try BootstrapLoader.decodeMessage(
          String(decoding: data, as: UTF8.self), as: Envoy_Service_Discovery_V3_DiscoveryResponse.self,
          format: format, source: path, allowUnknownFields: false
        ).0
      }
    } catch {
      counter.rejected()
      logger.warning(
        "cannot read the config file; keeping the current config",
        metadata: ["proxy.xds.type": "\(type.shortName)", "proxy.xds.path": "\(path)", "error": "\(error)"])
      return
    }
    let update = ResourceUpdate(
      type: type, versionInfo: response.versionInfo,
      resources: response.resources.map {
        ResourceUpdate.Resource(name: "", version: response.versionInfo, decodedFromText: $0)
      },
      stateOfTheWorld: true)
    if let rejection = await resources.apply(update) {
      logger.warning(
        "config file rejected; keeping the current config",
        metadata: ["proxy.xds.path": "\(path)", "error": "\(rejection)"])
    } else {
      logger.info(
        "config file applied",
        metadata: [
          "proxy.xds.type": "\(type.shortName)", "proxy.xds.path": "\(path)",
          "proxy.xds.version": "\(response.versionInfo)",
          "proxy.xds.resources": "\(response.resources.count)",
        ])
    }
  }
}
