package import OrderedCollections

/// Extra proxy environment carried in the webhook's URL path, after `/inject`.
///
/// `/inject/cluster/c1/net/n1/k/v` gives `ISTIO_META_CLUSTER_ID=c1`, `ISTIO_META_NETWORK=n1`, `K=v`: keys
/// come in pairs, `cluster` and `net` have fixed names, any other key is upper-cased, `--slash--` in a value
/// stands for `/`, and a final key without a value is ignored. The older form
/// `/inject/:ENV:cluster=c1:ENV:net=n1` is read too; there a pair needs a non-empty name and an `=`.
package enum InjectPathParameters {
  /// The environment named by `path` (the whole request path, query already removed), in path order;
  /// a repeated name keeps its last value.
  package static func environment(fromPath path: String) -> OrderedDictionary<String, String> {
    var trimmed = Substring(path)
    while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    // Everything after the second slash ("/inject/<tail>"); no tail means no parameters.
    let parts = trimmed.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3 else { return [:] }
    let tail = parts[2]

    var words: [Substring] = []
    if tail.hasPrefix(":ENV:") {
      for pair in tail.split(separator: ":ENV:", omittingEmptySubsequences: false).dropFirst() {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else { continue }
        words.append(pair[..<equals])
        words.append(pair[pair.index(after: equals)...])
      }
    } else {
      words = tail.split(separator: "/", omittingEmptySubsequences: false)
    }

    var result: OrderedDictionary<String, String> = [:]
    var index = 0
    while index + 1 < words.count {
      let key = String(words[index])
      let value = words[index + 1].replacing("--slash--", with: "/")
      index += 2
      let name: String
      switch key {
      case "cluster": name = "ISTIO_META_CLUSTER_ID"
      case "net": name = "ISTIO_META_NETWORK"
      default: name = key.uppercased()
      }
      guard !name.isEmpty else { continue }
      result[name] = String(value)
    }
    return result
  }
}

extension InjectorSettings {
  /// These settings with the URL path's environment applied: `ISTIO_META_CLUSTER_ID` sets the cluster ID,
  /// every other variable goes into the proxy's environment (proxy metadata), replacing a configured value.
  package func applying(pathEnvironment environment: OrderedDictionary<String, String>) -> InjectorSettings {
    var settings = self
    for (name, value) in environment {
      if name == "ISTIO_META_CLUSTER_ID" {
        settings.clusterID = value
      } else {
        settings.proxyMetadata[name] = value
      }
    }
    return settings
  }
}
