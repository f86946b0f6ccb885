/// Bootstraps used by the tests: an Istio-like sidecar bootstrap (JSON) and an Envoy-example YAML.
enum Fixtures {
  static let istioSidecarJSON = #"""
    {
      "node": {
        "id": "sidecar~10.1.2.3~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local",
        "cluster": "productpage.default",
        "locality": {},
        "metadata": {"NAMESPACE": "default", "LABELS": {"app": "productpage"}, "ISTIO_VERSION": "1.24.0"}
      },
      "layered_runtime": {
        "layers": [
          {"name": "global config", "static_layer": {"overload.global_downstream_max_connections": 2147483647}},
          {"name": "admin", "admin_layer": {}}
        ]
      },
      "stats_config": {
        "use_all_default_tags": false,
        "stats_tags": [
          {"tag_name": "cluster_name", "regex": "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)"}
        ]
      },
      "admin": {
        "address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": 15000}}
      },
      "dynamic_resources": {
        "lds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
        "cds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
        "ads_config": {
          "api_type": "GRPC",
          "set_node_on_first_message_only": true,
          "transport_api_version": "V3",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]
        }
      },
      "static_resources": {
        "clusters": [
          {
            "name": "prometheus_stats",
            "type": "STATIC",
            "connect_timeout": "0.250s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {
              "cluster_name": "prometheus_stats",
              "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": 15000}}}}]}]
            }
          },
          {
            "name": "agent",
            "type": "STATIC",
            "connect_timeout": "0.250s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {
              "cluster_name": "agent",
              "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": 15020}}}}]}]
            }
          },
          {
            "name": "xds-grpc",
            "type": "STATIC",
            "connect_timeout": "1s",
            "lb_policy": "ROUND_ROBIN",
            "typed_extension_protocol_options": {
              "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
              }
            },
            "load_assignment": {
              "cluster_name": "xds-grpc",
              "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": "./etc/istio/proxy/XDS"}}}}]}]
            },
            "circuit_breakers": {
              "thresholds": [{"priority": "DEFAULT", "max_connections": 100000, "max_pending_requests": 100000,
                              "max_requests": 100000}]
            }
          }
        ],
        "listeners": [
          {
            "name": "health",
            "address": {"socket_address": {"protocol": "TCP", "address": "0.0.0.0", "port_value": 15021}},
            "filter_chains": [{
              "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                  "codec_type": "AUTO",
                  "stat_prefix": "agent",
                  "route_config": {
                    "virtual_hosts": [{
                      "name": "backend",
                      "domains": ["*"],
                      "routes": [{"match": {"prefix": "/healthz/ready"}, "route": {"cluster": "agent"}}]
                    }]
                  },
                  "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                  }]
                }
              }]
            }]
          }
        ]
      }
    }
    """#

  static let envoyExampleYAML = """
    static_resources:
      listeners:
      - name: listener_0
        address:
          socket_address: { address: 0.0.0.0, port_value: 10000 }
        filter_chains:
        - filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: destination
              cluster: cluster_0
              idle_timeout: 30s
      clusters:
      - name: cluster_0
        connect_timeout: 0.25s
        type: STATIC
        load_assignment:
          cluster_name: cluster_0
          endpoints:
          - lb_endpoints:
            - endpoint:
                address:
                  socket_address: { address: 127.0.0.1, port_value: 1234 }
    admin:
      address:
        socket_address: { address: 127.0.0.1, port_value: 9901 }

    """
}
