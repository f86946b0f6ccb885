/// `GET /stats/prometheus`: Prometheus text exposition 0.0.4, as Envoy's `PrometheusStatsFormatter`.
///
/// Metric name: `envoy_` + the tag-extracted name with every character outside `[a-zA-Z0-9_]` turned into
/// `_`. Labels: the stat's tags in extraction order, names sanitized the same way, values with `\`, `"` and
/// newline escaped. Counters, then gauges, then histograms; within each kind one `# TYPE` line per metric
/// name, families ordered by tag-extracted name, the stats of a family ordered by full name. Histograms
/// are `_bucket{…,le="<bound>"}` per configured bound, `le="+Inf"`, `_sum` and `_count`.
extension StatsStore {
  package func renderPrometheus(usedOnly: Bool = false, filter: StatsFilter? = nil) -> String {
    let (counters, gauges, histograms) = allStats()
    func shown(_ name: String, _ used: Bool) -> Bool {
      (!usedOnly || used) && (filter?.matches(name) ?? true)
    }
    var out = ""
    Self.renderFamilies(
      counters.filter { shown($0.name, $0.used) }.map { ($0.identity, $0) }, type: "counter", into: &out
    ) { metric, labels, counter, out in
      out += "\(metric){\(labels)} \(counter.value)\n"
    }
    Self.renderFamilies(
      gauges.filter { shown($0.name, $0.used) }.map { ($0.identity, $0) }, type: "gauge", into: &out
    ) { metric, labels, gauge, out in
      out += "\(metric){\(labels)} \(gauge.value)\n"
    }
    Self.renderFamilies(
      histograms.filter { shown($0.name, $0.used) }.map { ($0.identity, $0) }, type: "histogram", into: &out
    ) { metric, labels, histogram, out in
      let snapshot = histogram.snapshot(quantiles: [])
      let bucketLabels = labels.isEmpty ? "" : labels + ","
      for (bound, count) in zip(snapshot.bounds, snapshot.cumulativeBuckets) {
        out += "\(metric)_bucket{\(bucketLabels)le=\"\(StatsNumberFormat.g32(bound))\"} \(count)\n"
      }
      out += "\(metric)_bucket{\(bucketLabels)le=\"+Inf\"} \(snapshot.count)\n"
      out += "\(metric)_sum{\(labels)} \(StatsNumberFormat.g32(snapshot.sum))\n"
      out += "\(metric)_count{\(labels)} \(snapshot.count)\n"
    }
    return out
  }

  /// Groups stats into metric families (by Prometheus name, so two tag-extracted names that sanitize alike
  /// still share one `# TYPE` line) and renders them in order.
  private static func renderFamilies<Stat>(
    _ stats: [(StatIdentity, Stat)], type: String, into out: inout String,
    line: (_ metric: String, _ labels: String, _ stat: Stat, _ out: inout String) -> Void
  ) {
    var families: [String: (firstExtracted: String, members: [(StatIdentity, Stat)])] = [:]
    for (identity, stat) in stats {
      let metric = prometheusMetricName(identity.tagExtractedName)
      families[metric, default: (identity.tagExtractedName, [])].members.append((identity, stat))
      families[metric]!.firstExtracted = min(families[metric]!.firstExtracted, identity.tagExtractedName)
    }
    let ordered = families.sorted { ($0.value.firstExtracted, $0.key) < ($1.value.firstExtracted, $1.key) }
    for (metric, family) in ordered {
      out += "# TYPE \(metric) \(type)\n"
      for (identity, stat) in family.members.sorted(by: { $0.0.name < $1.0.name }) {
        line(metric, prometheusLabels(identity.tags), stat, &out)
      }
    }
  }

  /// `envoy_` + sanitized tag-extracted name.
  package static func prometheusMetricName(_ tagExtractedName: String) -> String {
    "envoy_" + prometheusSanitize(tagExtractedName)
  }

  /// `name="value",…` for `tags`, in order.
  package static func prometheusLabels(_ tags: [StatTag]) -> String {
    tags.map { tag in
      var name = prometheusSanitize(tag.name)
      // A label name may not start with a digit (Envoy does not guard this; promtool rejects it).
      if let first = name.utf8.first, first >= 48 && first <= 57 { name = "_" + name }
      return "\(name)=\"\(prometheusEscape(tag.value))\""
    }.joined(separator: ",")
  }

  /// Every character outside `[a-zA-Z0-9_]` becomes `_` (per UTF-8 byte, as RE2's `[^a-zA-Z0-9_]` on bytes
  /// would replace each code point once; multi-byte code points give one `_` here too).
  static func prometheusSanitize(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
      let v = scalar.value
      let ok = (v >= 48 && v <= 57) || (v >= 65 && v <= 90) || (v >= 97 && v <= 122) || v == 95
      out.unicodeScalars.append(ok ? scalar : "_")
    }
    return out
  }

  /// Label value escaping of the text format: `\` → `\\`, newline → `\n`, `"` → `\"`.
  static func prometheusEscape(_ value: String) -> String {
    guard value.utf8.contains(where: { $0 == 92 || $0 == 10 || $0 == 34 }) else { return value }
    var out = ""
    for ch in value.unicodeScalars {
      switch ch {
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\"": out += "\\\""
      default: out.unicodeScalars.append(ch)
      }
    }
    return out
  }
}
