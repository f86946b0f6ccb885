internal import OrderedCollections
package import PilotfishKit

/// Adds the Pilotfish sidecar to a pod, and takes it out again: the pure core of `pilotfish inject` and
/// of the webhook.
///
/// Invariants:
/// - `inject` decides first (`InjectionPolicy`), then validates every annotation, then builds; a pod is
///   either skipped unchanged, rejected with an error naming the annotation or field, or injected whole.
/// - An already injected pod (one with `sidecar.istio.io/status`) is uninjected first, so injecting twice
///   gives byte for byte what injecting once gives.
/// - `uninject(inject(p)) == p` for every pod `p` that is injected: everything added is listed in the
///   status annotation, everything changed is recorded there or in the proxy's environment.
package enum PodInjector {
  typealias Keys = InjectionKeys

  /// `pod` is a Pod, or a pod template (an object with metadata and spec). Returns the mutated object.
  package static func inject(_ pod: JSONValue, context: InjectionContext) throws(InjectionError)
    -> InjectionOutcome
  {
    var document = try PodDocument(pod)
    if document.annotations[Keys.status] != nil {
      document = try PodDocument(uninject(pod))
    }
    if let reason = InjectionPolicy.skipReason(
      labels: document.labels, annotations: document.annotations, hostNetwork: document.hostNetwork,
      context: context)
    {
      return .skipped(reason: reason)
    }
    let settings = context.settings
    let options = try SidecarOptions(annotations: document.annotations, settings: settings)
    try checkNoConflicts(document, options)

    var status = InjectionStatus()
    status.revision = settings.revision.isEmpty ? "default" : settings.revision
    var labels = MetadataEdits(document.labels)
    var annotations = MetadataEdits(document.annotations)

    // Metadata the template adds.
    let appContainers = PodDocument.names(document.containers).filter { $0 != Keys.proxyContainer }
    let workload = workloadIdentity(document, context: context)
    labels.setIfAbsent(Keys.tlsMode, "istio")
    labels.setIfAbsent(Keys.canonicalName, canonicalName(labels.values, workload: workload.name))
    labels.setIfAbsent(
      Keys.canonicalRevision,
      labels[Keys.canonicalRevision] ?? labels["app.kubernetes.io/version"] ?? labels["version"] ?? "latest")
    let network = options.proxyMetadata.first(where: { $0.name == "ISTIO_META_NETWORK" })?.value ?? ""
    if !network.isEmpty { labels.set(Keys.networkLabel, network) }
    annotations.set(Keys.revision, status.revision)
    if let first = appContainers.first {
      annotations.setIfAbsent(Keys.defaultContainer, first)
      annotations.setIfAbsent(Keys.defaultLogsContainer, first)
    }
    if options.cniMode { echoTrafficAnnotations(&annotations, options) }

    // The added objects.
    let podPorts = document.containers.filter { $0["name"]?.stringValue != Keys.proxyContainer }
      .flatMap { $0["ports"]?.arrayValue ?? [] }
    let template = SidecarTemplate(
      options: options, settings: settings, workloadName: workload.name, owner: workload.owner,
      podPorts: podPorts, appContainers: appContainers)
    var proxy = template.proxyContainer
    let initContainer = template.initContainer
    let volumes = template.volumes

    // Post-processing: metrics merge, then probe rewrite, each adding to the proxy's environment.
    var extraEnvironment: [JSONValue] = []
    if let scrape = try PrometheusMerge.apply(
      &annotations, statusPort: options.statusPort, enabled: options.mergeMetrics)
    {
      extraEnvironment.append(SidecarTemplate.env(Keys.prometheusEnv, scrape))
    }
    var lists = [document.initContainers, document.containers]
    if options.rewriteProbes && options.statusPort != 0 {
      let probers = AppProbeRewrite.rewrite(&lists, statusPort: options.statusPort)
      if !probers.probers.isEmpty {
        extraEnvironment.append(
          SidecarTemplate.env(Keys.appProbersEnv, JSONValue.object(probers.probers).jsonText))
      }
      status.probePortNames = probers.portNames
    }
    if !extraEnvironment.isEmpty {
      proxy["env"] = .array((proxy["env"]?.arrayValue ?? []) + extraEnvironment)
    }
    document.initContainers = lists[0]
    document.containers = lists[1]

    // Placement: native sidecars start first among init containers; a classic proxy goes last (first
    // when the app waits for it); istio-validation runs first, istio-init last, so user init containers
    // are not captured.
    let initName = initContainer?["name"]?.stringValue
    if options.native {
      document.initContainers = (initContainer.map { [$0] } ?? []) + [proxy] + document.initContainers
      status.initContainers = (initName.map { [$0] } ?? []) + [Keys.proxyContainer]
    } else {
      if let initContainer {
        if options.cniMode {
          document.initContainers.insert(initContainer, at: 0)
        } else {
          document.initContainers.append(initContainer)
        }
      }
      if options.holdApplication {
        document.containers.insert(proxy, at: 0)
      } else {
        document.containers.append(proxy)
      }
      status.initContainers = initName.map { [$0] } ?? []
      status.containers = [Keys.proxyContainer]
    }
    document.volumes += volumes
    status.volumes = PodDocument.names(volumes)

    status.addedLabels = labels.added
    status.previousLabels = labels.previous
    status.addedAnnotations = annotations.added
    status.previousAnnotations = annotations.previous
    annotations.set(Keys.status, status.text)
    document.labels = labels.values
    document.annotations = annotations.values
    return .injected(document.assembled)
  }

  /// Removes everything inject added (containers, init containers, volumes, labels, annotations, probe
  /// rewrites restored from ISTIO_KUBE_APP_PROBERS, prometheus annotations restored) — inverse of inject.
  /// An object that is not an injected pod comes back unchanged.
  package static func uninject(_ pod: JSONValue) -> JSONValue {
    guard var document = try? PodDocument(pod), let text = document.annotations[Keys.status] else {
      return pod
    }
    let status = InjectionStatus(text: text) ?? InjectionStatus()

    // What the proxy carried about the app, read before the proxy goes.
    let proxy = (document.containers + document.initContainers).first {
      $0["name"]?.stringValue == Keys.proxyContainer
    }
    let environment = proxy?["env"]?.arrayValue ?? []
    func variable(_ name: String) -> String? {
      environment.first(where: { $0["name"]?.stringValue == name })?["value"]?.stringValue
    }

    document.containers.removeAll { status.containers.contains($0["name"]?.stringValue ?? "") }
    document.initContainers.removeAll { status.initContainers.contains($0["name"]?.stringValue ?? "") }
    document.volumes.removeAll { status.volumes.contains($0["name"]?.stringValue ?? "") }

    if let text = variable(Keys.appProbersEnv), case .object(let probers)? = try? JSONValue.parseYAML(text) {
      var lists = [document.initContainers, document.containers]
      AppProbeRewrite.restore(&lists, probers: probers, portNames: status.probePortNames)
      document.initContainers = lists[0]
      document.containers = lists[1]
    }

    document.annotations.removeValue(forKey: Keys.status)
    if status.hasRecord {
      MetadataEdits.undo(
        &document.annotations, added: status.addedAnnotations, previous: status.previousAnnotations)
    } else {
      restorePrometheus(&document.annotations, from: variable(Keys.prometheusEnv))
    }
    MetadataEdits.undo(&document.labels, added: status.addedLabels, previous: status.previousLabels)
    return document.assembled
  }

  // MARK: steps

  /// Refuses pods that already carry objects with the names injection adds (but no status annotation):
  /// Pilotfish does not merge user-defined sidecar containers into its own.
  private static func checkNoConflicts(_ document: PodDocument, _ options: SidecarOptions)
    throws(InjectionError)
  {
    let reserved = [Keys.proxyContainer, Keys.initContainer, Keys.validationContainer]
    for name in PodDocument.names(document.containers + document.initContainers) where reserved.contains(name)
    {
      throw InjectionError(
        .invalidObject,
        "the pod already has a container named \(name) but no \(Keys.status) annotation; remove it (Pilotfish does not merge user-defined sidecar containers)"
      )
    }
    let existing = Set(PodDocument.names(document.volumes))
    let template = SidecarTemplate(
      options: options, settings: .init(), workloadName: nil, owner: nil, podPorts: [], appContainers: [])
    for name in PodDocument.names(template.volumes) where existing.contains(name) {
      if options.userVolumes.contains(where: { $0.name == name }) {
        throw InjectionError(
          .invalidAnnotation,
          "annotation \(Keys.userVolume): volume \(InjectionError.quoted(name)) already exists in the pod")
      }
      throw InjectionError(
        .invalidObject, "the pod already has a volume named \(name), which the sidecar needs")
    }
    let mountable = existing.union(PodDocument.names(template.volumes))
    for mount in options.userVolumeMounts where !mountable.contains(mount.name) {
      throw InjectionError(
        .invalidAnnotation,
        "annotation \(Keys.userVolumeMount): volume \(InjectionError.quoted(mount.name)) is neither in \(Keys.userVolume) nor in the pod"
      )
    }
  }

  /// The workload name and `ISTIO_META_OWNER`: the context's owner, else the pod itself.
  private static func workloadIdentity(
    _ document: PodDocument, context: InjectionContext
  ) -> (name: String, owner: String?) {
    let podName = document.metadata["name"]?.stringValue ?? ""
    let name = context.ownerName.flatMap { $0.isEmpty ? nil : $0 } ?? podName
    let kind = context.ownerKind.flatMap { $0.isEmpty ? nil : $0 } ?? "Pod"
    let apiVersion =
      context.ownerAPIVersion.flatMap { $0.isEmpty ? nil : $0 } ?? (context.ownerKind == nil ? "v1" : "")
    let workloadName = document.labels[Keys.workloadName] ?? name
    var owner: String?
    if !apiVersion.isEmpty && !name.isEmpty {
      let namespace =
        !context.namespace.isEmpty
        ? context.namespace : (document.metadata["namespace"]?.stringValue ?? "default")
      owner =
        "kubernetes://apis/\(apiVersion)/namespaces/\(namespace.isEmpty ? "default" : namespace)/\(kind.lowercased())s/\(name)"
    }
    return (workloadName, owner)
  }

  /// The existing canonical name, else `app.kubernetes.io/name`, else `app`, else the workload name;
  /// at most 63 characters, without `-`, `_` or `.` at either end.
  private static func canonicalName(_ labels: OrderedDictionary<String, String>, workload: String) -> String {
    let name =
      [labels[Keys.canonicalName], labels["app.kubernetes.io/name"], labels["app"]]
      .compactMap { $0 }.first { !$0.isEmpty } ?? workload
    var trimmed = Substring(name.prefix(63))
    while let first = trimmed.first, "-_.".contains(first) { trimmed = trimmed.dropFirst() }
    while let last = trimmed.last, "-_.".contains(last) { trimmed = trimmed.dropLast() }
    return String(trimmed)
  }

  /// In CNI mode the CNI plugin reads the capture settings from the pod's annotations.
  private static func echoTrafficAnnotations(_ annotations: inout MetadataEdits, _ options: SidecarOptions) {
    annotations.set(Keys.interceptionMode, options.interceptionMode)
    if !options.includeOutboundIPRanges.isEmpty {
      annotations.set(Keys.includeOutboundIPRanges, options.includeOutboundIPRanges)
    }
    if !options.excludeOutboundIPRanges.isEmpty {
      annotations.set(Keys.excludeOutboundIPRanges, options.excludeOutboundIPRanges)
    }
    annotations.set(Keys.includeInboundPorts, options.includeInboundPorts)
    annotations.set(Keys.excludeInboundPorts, options.excludeInboundPorts)
    if let ports = options.includeOutboundPorts { annotations.set(Keys.includeOutboundPorts, ports) }
    if let ports = options.excludeOutboundPorts { annotations.set(Keys.excludeOutboundPorts, ports) }
  }

  /// For a pod injected by Istio (no Pilotfish record): the app's scrape annotations from the proxy's
  /// `ISTIO_PROMETHEUS_ANNOTATIONS`, in place of the agent's.
  private static func restorePrometheus(
    _ annotations: inout OrderedDictionary<String, String>, from text: String?
  ) {
    guard let text, case .object(let saved)? = try? JSONValue.parseYAML(text) else { return }
    for (key, field) in [
      (Keys.prometheusScrape, "scrape"), (Keys.prometheusPath, "path"), (Keys.prometheusPort, "port"),
    ] {
      if let value = saved[field]?.stringValue, !value.isEmpty {
        annotations[key] = value
      } else {
        annotations.removeValue(forKey: key)
      }
    }
  }
}
