internal import PilotfishKit

/// The admin `/stats` outputs (text and `format=json`), as Envoy's `StatsTextRender`/`StatsJsonRender`
/// lay them out with the default `histogram_buckets` mode.
extension StatsStore {
  /// Envoy's `HistogramStatisticsImpl::supportedQuantiles`.
  static let supportedQuantiles: [Double] = [0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1]

  /// `GET /stats`: counters and gauges as `name: value`, together sorted by name, then histograms sorted
  /// by name as `name: P0(interval,cumulative) P25(…) … P100(…)`, or `name: No recorded values`.
  package func renderText(usedOnly: Bool = false, filter: StatsFilter? = nil) -> String {
    let selection = select(usedOnly: usedOnly, filter: filter)
    var out = ""
    for (name, value) in selection.numeric {
      out += "\(name): \(value)\n"
    }
    for histogram in selection.histograms {
      let snapshot = histogram.snapshot(quantiles: Self.supportedQuantiles)
      guard snapshot.used else {
        out += "\(histogram.name): No recorded values\n"
        continue
      }
      var parts: [String] = []
      for (i, q) in Self.supportedQuantiles.enumerated() {
        parts.append(
          "P\(StatsNumberFormat.g(q * 100))(\(StatsNumberFormat.shortest(snapshot.intervalQuantiles[i])),"
            + "\(StatsNumberFormat.shortest(snapshot.cumulativeQuantiles[i])))")
      }
      out += "\(histogram.name): \(parts.joined(separator: " "))\n"
    }
    return out
  }

  /// `GET /stats?format=json`: `{"stats":[{"name":…,"value":…},…,{"histograms":{"supported_quantiles":[…],
  /// "computed_quantiles":[{"name":…,"values":[{"cumulative":…,"interval":…},…]}]}}]}`; the histograms
  /// element only when a histogram is selected, NaN as `null`, quantiles with `%g` (Envoy's JSON streamer
  /// writes `cumulative` before `interval`).
  package func renderJSON(usedOnly: Bool = false, filter: StatsFilter? = nil) -> String {
    let selection = select(usedOnly: usedOnly, filter: filter)
    var entries: [String] = selection.numeric.map { name, value in
      "{\"name\":\(JSONValue.quote(name, escapingHTML: false)),\"value\":\(value)}"
    }
    if !selection.histograms.isEmpty {
      let supported = Self.supportedQuantiles.map { StatsNumberFormat.g($0 * 100) }.joined(separator: ",")
      let computed = selection.histograms.map { histogram in
        let snapshot = histogram.snapshot(quantiles: Self.supportedQuantiles)
        let values = zip(snapshot.cumulativeQuantiles, snapshot.intervalQuantiles).map {
          cumulative, interval in
          "{\"cumulative\":\(Self.jsonNumber(cumulative)),\"interval\":\(Self.jsonNumber(interval))}"
        }
        return
          "{\"name\":\(JSONValue.quote(histogram.name, escapingHTML: false)),\"values\":[\(values.joined(separator: ","))]}"
      }
      entries.append(
        "{\"histograms\":{\"supported_quantiles\":[\(supported)],\"computed_quantiles\":[\(computed.joined(separator: ","))]}}"
      )
    }
    return "{\"stats\":[\(entries.joined(separator: ","))]}"
  }

  private static func jsonNumber(_ value: Double) -> String {
    value.isNaN ? "null" : StatsNumberFormat.g(value)
  }

  /// Counters and gauges merged and sorted by name, histograms sorted by name, after `usedonly`/`filter`.
  func select(usedOnly: Bool, filter: StatsFilter?) -> (numeric: [(String, UInt64)], histograms: [Histogram])
  {
    let (counters, gauges, histograms) = allStats()
    func shown(_ name: String, _ used: Bool) -> Bool {
      (!usedOnly || used) && (filter?.matches(name) ?? true)
    }
    var numeric: [(name: String, kind: Int, value: UInt64)] = []
    for c in counters where shown(c.name, c.used) { numeric.append((c.name, 0, c.value)) }
    for g in gauges where shown(g.name, g.used) { numeric.append((g.name, 1, g.value)) }
    numeric.sort { ($0.name, $0.kind) < ($1.name, $1.kind) }
    let shownHistograms = histograms.filter { shown($0.name, $0.used) }.sorted { $0.name < $1.name }
    return (numeric.map { ($0.name, $0.value) }, shownHistograms)
  }
}
