internal import OrderedCollections
internal import PilotfishKit

/// Points Prometheus at the agent's merged metrics endpoint and tells the agent where the app's metrics are.
///
/// Invariant (Istio's `applyPrometheusMerge`): unless the pod's scrape annotation is false, merging is off
/// (`prometheus.istio.io/merge-metrics: "false"`), or the port annotation already names the status port,
/// the app's `prometheus.io/{scrape,path,port}` and `prometheus.istio.io/scrape-targets` become
/// `ISTIO_PROMETHEUS_ANNOTATIONS` (`{"scrape","path","port"[,"targets"]}`), and the pod is annotated to be
/// scraped on `<statusPort>/stats/prometheus`. Annotation names match after Prometheus' sanitising
/// (`prometheus.io.scrape` is `prometheus.io/scrape`); a matching annotation gets its new value in place,
/// so Prometheus sees one value under every spelling and every edit can be undone.
enum PrometheusMerge {
  /// Rewrites the annotations; returns the environment value, nil when the app configured nothing.
  static func apply(
    _ annotations: inout MetadataEdits, statusPort: Int, enabled: Bool
  ) throws(InjectionError) -> String? {
    guard enabled, statusPort != 0 else { return nil }
    let values = annotations.values
    if let scrape = values.first(where: {
      sanitized($0.key) == "prometheus_io_scrape" && AnnotationRules.bool($0.value) != nil
    }),
      AnnotationRules.bool(scrape.value) == false
    {
      return nil
    }
    let agentPort = String(statusPort)
    if let current = first(values, "prometheus_io_port"), current.value == agentPort { return nil }

    let scrape = first(values, "prometheus_io_scrape")?.value ?? ""
    var path = first(values, "prometheus_io_path")?.value ?? ""
    var port = first(values, "prometheus_io_port")
    var targets: [(port: String, path: String)] = []
    if let annotation = first(values, "prometheus_istio_io_scrape_targets") {
      targets = try parseTargets(annotation.key, annotation.value)
      for target in targets {
        try checkPort(annotation.key, annotation.value, target.port, statusPort: statusPort)
      }
      if let first = targets.first {
        port = (annotation.key, first.port)
        path = first.path
      }
    } else if let port, !port.value.isEmpty {
      try checkPort(port.key, port.value, port.value, statusPort: statusPort)
    }

    var environment: String?
    if !scrape.isEmpty || !path.isEmpty || !(port?.value.isEmpty ?? true) || !targets.isEmpty {
      var object: OrderedDictionary<String, JSONValue> = [
        "scrape": .string(scrape), "path": .string(path), "port": .string(port?.value ?? ""),
      ]
      if !targets.isEmpty {
        object["targets"] = .array(targets.map { ["port": .string($0.port), "path": .string($0.path)] })
      }
      environment = JSONValue.object(object).jsonText
    }

    for (canonical, name, value) in [
      (InjectionKeys.prometheusPort, "prometheus_io_port", agentPort),
      (InjectionKeys.prometheusPath, "prometheus_io_path", "/stats/prometheus"),
      (InjectionKeys.prometheusScrape, "prometheus_io_scrape", "true"),
    ] {
      let matching = annotations.values.keys.filter { sanitized($0) == name }
      if matching.isEmpty {
        annotations.set(canonical, value)
      } else {
        for key in matching { annotations.set(key, value) }
      }
    }
    return environment
  }

  /// Prometheus' label-name sanitising: every character outside `[a-zA-Z0-9_]` becomes `_`.
  static func sanitized(_ name: String) -> String {
    String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
  }

  private static func first(
    _ values: OrderedDictionary<String, String>, _ name: String
  ) -> (key: String, value: String)? {
    values.first(where: { sanitized($0.key) == name }).map { ($0.key, $0.value) }
  }

  /// `port[:path],...`; an empty path is `/metrics`.
  private static func parseTargets(_ name: String, _ value: String) throws(InjectionError) -> [(
    port: String, path: String
  )] {
    var result: [(port: String, path: String)] = []
    for entry in value.split(separator: ",") {
      let text = AnnotationRules.trim(entry)
      if text.isEmpty { continue }
      let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
      let port = AnnotationRules.trim(parts[0])
      guard !port.isEmpty else { throw .item(name, value, text, "has no port (use port[:path],...)") }
      let path = parts.count == 2 ? AnnotationRules.trim(parts[1]) : ""
      result.append((port, path.isEmpty ? "/metrics" : path))
    }
    return result
  }

  /// An app metrics port: 1-65535, not the status port, not a port of the data plane.
  private static func checkPort(_ name: String, _ value: String, _ port: String, statusPort: Int)
    throws(InjectionError)
  {
    guard let number = Int(port), (1...65535).contains(number) else {
      throw .item(name, value, port, "is not a port number (1-65535)")
    }
    if number == statusPort {
      throw .item(name, value, port, "is the agent's status port, which serves the merged metrics")
    }
    if let owner = InjectionKeys.reservedPorts[number] {
      throw .item(name, value, port, "is reserved for the sidecar (\(owner)) and cannot be scraped")
    }
  }
}
