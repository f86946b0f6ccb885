package import EnvoyAPI

extension StatsConfig {
  /// The bootstrap's `stats_config`. Everything is compiled here once, so a bad regex or matcher is
  /// reported with its field path (`stats_config.stats_tags[1].regex: …`).
  package init(_ proto: Envoy_Config_Metrics_V3_StatsConfig, path: String) throws(ProxyConfigError) {
    self.init()
    tagSpecifiers = proto.statsTags.map { tag in
      switch tag.tagValue {
      case .fixedValue(let value): TagSpecifier(name: tag.tagName, value: .fixedValue(value))
      case .regex(let regex): TagSpecifier(name: tag.tagName, value: .regex(regex))
      case nil: TagSpecifier(name: tag.tagName, value: .regex(""))
      }
    }
    useAllDefaultTags = proto.hasUseAllDefaultTags ? proto.useAllDefaultTags.value : true

    let matcherPath = path + ".stats_matcher"
    switch proto.statsMatcher.statsMatcher {
    case nil: matcher = .acceptAll
    case .rejectAll(let reject): matcher = reject ? .rejectAll : .acceptAll
    case .inclusionList(let list):
      matcher = .inclusion(try Self.matchers(list.patterns, path: matcherPath + ".inclusion_list.patterns"))
    case .exclusionList(let list):
      matcher = .exclusion(try Self.matchers(list.patterns, path: matcherPath + ".exclusion_list.patterns"))
    }

    for (i, setting) in proto.histogramBucketSettings.enumerated() {
      let settingPath = "\(path).histogram_bucket_settings[\(i)]"
      histogramBucketSettings.append(
        HistogramBucketSetting(
          match: try StringMatcher(proto: setting.match, path: settingPath + ".match"),
          buckets: setting.buckets))
    }

    // Tag regexes, empty lists and bucket bounds are checked by the store; check them here too so the
    // error carries the field path.
    do {
      _ = try StatsStore(config: self)
    } catch {
      throw ProxyConfigError(path, error.message)
    }
  }

  private static func matchers(
    _ patterns: [Envoy_Type_Matcher_V3_StringMatcher], path: String
  ) throws(ProxyConfigError) -> [StringMatcher] {
    guard !patterns.isEmpty else { throw ProxyConfigError(path, "must have at least one pattern") }
    var out: [StringMatcher] = []
    for (i, pattern) in patterns.enumerated() {
      out.append(try StringMatcher(proto: pattern, path: "\(path)[\(i)]"))
    }
    return out
  }
}

extension StringMatcher {
  /// `envoy.type.matcher.v3.StringMatcher`; `safe_regex` uses its `regex` (RE2 syntax, compiled by RE2).
  package init(proto: Envoy_Type_Matcher_V3_StringMatcher, path: String) throws(ProxyConfigError) {
    let pattern: Pattern
    switch proto.matchPattern {
    case .exact(let s): pattern = .exact(s)
    case .prefix(let s): pattern = .prefix(s)
    case .suffix(let s): pattern = .suffix(s)
    case .contains(let s): pattern = .contains(s)
    case .safeRegex(let regex): pattern = .safeRegex(regex.regex)
    case nil: throw ProxyConfigError(path, "match_pattern is required")
    }
    do {
      try self.init(pattern, ignoreCase: proto.ignoreCase)
    } catch {
      throw ProxyConfigError(path, error.message)
    }
  }
}
