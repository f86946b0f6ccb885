/// Turns a stat name into its tag-extracted name and tags, once per stat (Envoy's `TagProducerImpl`).
///
/// Extractors are registered as Envoy registers them: the defaults first (when `use_all_default_tags`),
/// then the configured specifiers in order. For a name, the extractors without a prefix run first, then
/// those whose prefix is the name's first dot-separated token, each in registration order. When several
/// extractors share a tag name, only the first that matches contributes. Every extractor sees the full
/// name; the ranges they remove are unioned and cut out at the end, so tags come out in that run order.
struct TagProducer: Sendable {
  private var withoutPrefix: [TagExtractor] = []
  private var byPrefix: [String: [TagExtractor]] = [:]
  private var duplicatedNames: Set<String> = []

  init(config: StatsConfig) throws(StatsConfigError) {
    var all: [TagExtractor] = []
    if config.useAllDefaultTags {
      for descriptor in DefaultTagExtractors.descriptors {
        all.append(try DefaultTagExtractors.extractor(descriptor))
      }
    }
    for (index, specifier) in config.tagSpecifiers.enumerated() {
      let path = "stats_tags[\(index)]"
      guard !specifier.name.isEmpty else {
        throw StatsConfigError(.invalidTagSpecifier, "\(path): tag_name cannot be empty")
      }
      switch specifier.value {
      case .fixedValue(let value):
        all.append(TagExtractor(name: specifier.name, prefix: "", substr: "", rule: .fixed(value)))
      case .regex(let regex) where regex.isEmpty:
        let defaults = DefaultTagExtractors.descriptors.filter { $0.name == specifier.name }
        guard !defaults.isEmpty else {
          throw StatsConfigError(
            .invalidTagSpecifier,
            "\(path): no regex specified for tag specifier and no default regex for name '\(specifier.name)'"
          )
        }
        for descriptor in defaults { all.append(try DefaultTagExtractors.extractor(descriptor)) }
      case .regex(let regex):
        all.append(try TagExtractor.configured(name: specifier.name, regex: regex, path: "\(path).regex"))
      }
    }
    var seen: Set<String> = []
    for extractor in all {
      if !seen.insert(extractor.name).inserted { duplicatedNames.insert(extractor.name) }
      if extractor.prefix.isEmpty {
        withoutPrefix.append(extractor)
      } else {
        byPrefix[extractor.prefix, default: []].append(extractor)
      }
    }
  }

  func identity(of name: String) -> StatIdentity {
    let tokens = name.split(separator: ".", omittingEmptySubsequences: false)
    var tags: [StatTag] = []
    var removals: [Range<Int>] = []
    var taken: Set<String> = []

    func run(_ extractor: TagExtractor) {
      let duplicated = duplicatedNames.contains(extractor.name)
      if duplicated && taken.contains(extractor.name) { return }
      guard let found = extractor.extract(from: name, tokens: tokens) else { return }
      tags.append(StatTag(name: extractor.name, value: found.value))
      if !found.remove.isEmpty { removals.append(found.remove) }
      if duplicated { taken.insert(extractor.name) }
    }

    for extractor in withoutPrefix { run(extractor) }
    if tokens.count > 1, let prefixed = byPrefix[String(tokens[0])] {
      for extractor in prefixed { run(extractor) }
    }
    guard !removals.isEmpty else { return StatIdentity(name: name, tagExtractedName: name, tags: tags) }

    let bytes = Array(name.utf8)
    var keep = [Bool](repeating: true, count: bytes.count)
    for range in removals {
      for i in range where i < keep.count { keep[i] = false }
    }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    for (i, b) in bytes.enumerated() where keep[i] { out.append(b) }
    return StatIdentity(name: name, tagExtractedName: String(decoding: out, as: UTF8.self), tags: tags)
  }
}
