/// Mesh-wide injection settings: what Istio reads from the injector ConfigMap (values and mesh config).
///
/// Invariant: a value holds settings only, never per-pod state; every field has Istio's default, so
/// `InjectorSettings()` injects like a stock `istioctl kube-inject`/webhook with the Pilotfish image.
/// Annotations on a pod override these per pod (see `SidecarOptions`).
package struct InjectorSettings: Sendable, Equatable {
  /// Image of the init (`istio-init`/`istio-validation`) and proxy (`istio-proxy`) containers; its
  /// ENTRYPOINT is `pilotfish`, so the containers set only `args`.
  package var proxyImage: String = "ghcr.io/pilotfish/pilotfish-proxy:latest"
  /// Injection policy: `true` is Istio's `enabled` (inject unless a pod or namespace opts out),
  /// `false` is `disabled` (inject only where a pod or namespace opts in).
  package var injectByDefault: Bool = true
  /// Whether the proxy runs as a Kubernetes native sidecar (an init container with `restartPolicy: Always`).
  package var nativeSidecars: NativeSidecarMode = .auto
  /// The minor version of the oldest kubelet the pod may land on (`33` for 1.33); nil when unknown.
  /// Only `NativeSidecarMode.auto` reads it: native sidecars are used from 1.33 on.
  package var kubeletMinorVersion: Int? = nil
  /// `CA_ADDR` of the proxy.
  package var caAddress: String = "istiod.istio-system.svc:15012"
  /// `TRUST_DOMAIN` of the proxy, and `ISTIO_META_MESH_ID` when `meshID` is empty.
  package var trustDomain: String = "cluster.local"
  /// `ISTIO_META_CLUSTER_ID` of the proxy.
  package var clusterID: String = "Kubernetes"
  /// `ISTIO_META_MESH_ID` of the proxy.
  package var meshID: String = "cluster.local"
  /// The injector's revision: the `istio.io/rev` annotation and the status annotation's `revision`;
  /// namespaces and pods labelled `istio.io/rev` with another value are left to that revision.
  package var revision: String = "default"
  /// The agent's status port (readiness, app probes, merged metrics); the
  /// `status.sidecar.istio.io/port` annotation overrides it, 0 turns the probes off.
  package var statusPort: Int = 15020
  /// Rewrite the app containers' probes to go through the agent (`sidecar.istio.io/rewriteAppHTTPProbers`).
  package var rewriteAppProbes: Bool = true
  /// Start the proxy before the app containers (classic sidecars only); `proxy.istio.io/config`
  /// `holdApplicationUntilProxyStarts` overrides it per pod.
  package var holdApplicationUntilProxyStarts: Bool = false
  /// ProxyConfig `proxyMetadata`: environment of the proxy and init containers, written in key order.
  package var proxyMetadata: [String: String] = [:]
  /// Istio CNI owns the redirection: the init container only validates it (`istio-validation`).
  package var cniMode: Bool = false
  /// Pass `--native-nftables` to `pilotfish istio-iptables`.
  package var nativeNftables: Bool = false

  package init() {}
}
