import EnvoyAPI
import Foundation
import SwiftProtobuf

/// Representative messages, shaped like what istiod and pilot-agent send a sidecar. The official peer
/// (`OfficialPeerScript`) checks the same values after decoding them with Envoy's own protos.
enum Fixtures {
  typealias Address = Envoy_Config_Core_V3_Address
  typealias ConfigSource = Envoy_Config_Core_V3_ConfigSource
  typealias TransportSocket = Envoy_Config_Core_V3_TransportSocket
  typealias SdsSecretConfig = Envoy_Extensions_TransportSockets_Tls_V3_SdsSecretConfig
  typealias CommonTlsContext = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext

  /// Every fixture with the name the peer knows it by.
  static func all() throws -> [(name: String, message: any SwiftProtobuf.Message)] {
    [
      ("bootstrap", try bootstrap()),
      ("listener", try virtualInbound()),
      ("cluster_eds", try edsCluster()),
      ("cluster_static", staticCluster()),
      ("discovery_response", try discoveryResponse()),
      ("secret", secret()),
      ("delta_request", deltaRequest()),
      ("delta_response", try deltaResponse()),
    ]
  }

  // MARK: - Building blocks

  static func socketAddress(_ ip: String, _ port: UInt32) -> Address {
    .with {
      $0.socketAddress = .with {
        $0.address = ip
        $0.portValue = port
      }
    }
  }

  static func any(_ message: any SwiftProtobuf.Message) throws -> Google_Protobuf_Any {
    try Google_Protobuf_Any(message: message)
  }

  static func adsSource() -> ConfigSource {
    .with {
      $0.ads = .init()
      $0.resourceApiVersion = .v3
    }
  }

  static func sdsSecret(_ name: String) -> SdsSecretConfig {
    .with {
      $0.name = name
      $0.sdsConfig = .with {
        $0.apiConfigSource = .with {
          $0.apiType = .grpc
          $0.transportApiVersion = .v3
          $0.grpcServices = [.with { $0.envoyGrpc = .with { $0.clusterName = "sds-grpc" } }]
          $0.setNodeOnFirstMessageOnly = true
        }
        $0.initialFetchTimeout = .init(seconds: 0)
        $0.resourceApiVersion = .v3
      }
    }
  }

  static func istioTLS(alpn: [String], san: String?) -> CommonTlsContext {
    .with {
      $0.tlsParams = .with {
        $0.tlsMinimumProtocolVersion = .tlsv12
        $0.cipherSuites = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]
      }
      $0.alpnProtocols = alpn
      $0.tlsCertificateSdsSecretConfigs = [sdsSecret("default")]
      $0.combinedValidationContext = .with {
        $0.defaultValidationContext = .with {
          if let san {
            $0.matchSubjectAltNames = [.with { $0.exact = san }]
          }
        }
        $0.validationContextSdsSecretConfig = sdsSecret("ROOTCA")
      }
    }
  }

  static func struct_(_ fields: [String: Google_Protobuf_Value]) -> Google_Protobuf_Struct {
    Google_Protobuf_Struct(fields: fields)
  }

  static func fileAccessLog() throws -> Envoy_Config_Accesslog_V3_AccessLog {
    try .with {
      $0.name = "envoy.access_loggers.file"
      $0.typedConfig = try any(
        Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog.with {
          $0.path = "/dev/stdout"
          $0.logFormat = .with {
            $0.textFormatSource = .with {
              $0.inlineString = "[%START_TIME%] \"%REQ(:METHOD)%\" %RESPONSE_CODE%\n"
            }
          }
        })
    }
  }

  // MARK: - Fixtures

  /// A pilot-agent style bootstrap: node, admin, ADS over a Unix socket cluster, a static health listener.
  static func bootstrap() throws -> Envoy_Config_Bootstrap_V3_Bootstrap {
    try .with {
      $0.node = .with {
        $0.id = "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local"
        $0.cluster = "productpage.default"
        $0.metadata = struct_([
          "NAMESPACE": .init(stringValue: "default"),
          "ENVOY_STATUS_PORT": .init(numberValue: 15021),
          "PILOT_SAN": .init(listValue: .init(values: [.init(stringValue: "istiod.istio-system.svc")])),
          "LABELS": .init(structValue: struct_(["app": .init(stringValue: "productpage")])),
        ])
        $0.locality = .with {
          $0.region = "us-east1"
          $0.zone = "us-east1-b"
        }
        $0.userAgentName = "envoy"
      }
      $0.admin = .with {
        $0.address = socketAddress("127.0.0.1", 15000)
        $0.profilePath = "/var/lib/istio/data/envoy.prof"
      }
      $0.dynamicResources = .with {
        $0.adsConfig = .with {
          $0.apiType = .deltaGrpc
          $0.transportApiVersion = .v3
          $0.grpcServices = [.with { $0.envoyGrpc = .with { $0.clusterName = "xds-grpc" } }]
          $0.setNodeOnFirstMessageOnly = true
        }
        $0.cdsConfig = adsSource()
        $0.ldsConfig = adsSource()
      }
      $0.staticResources = try .with {
        $0.listeners = [try healthListener()]
        $0.clusters = [
          try .with {
            $0.name = "xds-grpc"
            $0.type = .static
            $0.connectTimeout = .init(seconds: 1)
            $0.loadAssignment = .with {
              $0.clusterName = "xds-grpc"
              $0.endpoints = [
                .with {
                  $0.lbEndpoints = [
                    .with {
                      $0.endpoint = .with {
                        $0.address = .with { $0.pipe = .with { $0.path = "./etc/istio/proxy/XDS" } }
                      }
                    }
                  ]
                }
              ]
            }
            $0.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] =
              try any(
                Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.with {
                  $0.explicitHTTPConfig = .with { $0.http2ProtocolOptions = .init() }
                })
          }
        ]
      }
      $0.statsConfig = .with {
        $0.statsTags = [
          .with {
            $0.tagName = "cluster_name"
            $0.regex = "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)"
          },
          .with {
            $0.tagName = "reporter"
            $0.fixedValue = "destination"
          },
        ]
        $0.useAllDefaultTags = .init(false)
        $0.statsMatcher = .with {
          $0.inclusionList = .with {
            $0.patterns = [
              .with { $0.prefix = "reporter=" }, .with { $0.suffix = "ssl_context_update_by_sds" },
            ]
          }
        }
      }
      $0.layeredRuntime = .with {
        $0.layers = [
          .with {
            $0.name = "global config"
            $0.staticLayer = struct_([
              "overload.global_downstream_max_connections": .init(numberValue: 2_147_483_647)
            ])
          },
          .with {
            $0.name = "admin"
            $0.adminLayer = .init()
          },
        ]
      }
      $0.statsFlushInterval = .init(seconds: 5)
      $0.clusterManager = .with { $0.outlierDetection = .with { $0.eventLogPath = "/dev/stdout" } }
    }
  }

  /// Port 15021: /healthz/ready routed to the agent.
  static func healthListener() throws -> Envoy_Config_Listener_V3_Listener {
    try .with {
      $0.name = "health"
      $0.address = socketAddress("0.0.0.0", 15021)
      $0.filterChains = [
        try .with {
          $0.filters = [
            try .with {
              $0.name = "envoy.filters.network.http_connection_manager"
              $0.typedConfig = try any(
                Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.with {
                  $0.statPrefix = "agent"
                  $0.routeConfig = .with {
                    $0.virtualHosts = [
                      .with {
                        $0.name = "backend"
                        $0.domains = ["*"]
                        $0.routes = [
                          .with {
                            $0.match = .with { $0.prefix = "/healthz/ready" }
                            $0.route = .with { $0.cluster = "agent" }
                          }
                        ]
                      }
                    ]
                  }
                  $0.httpFilters = [
                    try .with {
                      $0.name = "envoy.filters.http.router"
                      $0.typedConfig = try any(Envoy_Extensions_Filters_Http_Router_V3_Router())
                    }
                  ]
                })
            }
          ]
        }
      ]
    }
  }

  /// The inbound capture listener: listener filters, an mTLS tcp_proxy chain and a plaintext HTTP chain.
  static func virtualInbound() throws -> Envoy_Config_Listener_V3_Listener {
    try .with {
      $0.name = "virtualInbound"
      $0.address = socketAddress("0.0.0.0", 15006)
      $0.useOriginalDst = .init(true)
      $0.trafficDirection = .inbound
      $0.continueOnListenerFiltersTimeout = true
      $0.listenerFiltersTimeout = .init(seconds: 0)
      $0.listenerFilters = [
        try .with {
          $0.name = "envoy.filters.listener.original_dst"
          $0.typedConfig = try any(Envoy_Extensions_Filters_Listener_OriginalDst_V3_OriginalDst())
        },
        try .with {
          $0.name = "envoy.filters.listener.tls_inspector"
          $0.typedConfig = try any(Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector())
        },
        try .with {
          $0.name = "envoy.filters.listener.http_inspector"
          $0.typedConfig = try any(Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector())
          $0.filterDisabled = .with {
            $0.orMatch = .with {
              $0.rules = [
                .with {
                  $0.destinationPortRange = .with {
                    $0.start = 15017
                    $0.end = 15018
                  }
                },
                .with { $0.notMatch = .with { $0.anyMatch = true } },
              ]
            }
          }
        },
      ]
      $0.filterChains = [try mtlsTCPChain(), try httpChain()]
    }
  }

  static func mtlsTCPChain() throws -> Envoy_Config_Listener_V3_FilterChain {
    try .with {
      $0.name = "0.0.0.0_9080"
      $0.filterChainMatch = .with {
        $0.destinationPort = .init(9080)
        $0.transportProtocol = "tls"
        $0.applicationProtocols = ["istio-peer-exchange", "istio"]
        $0.prefixRanges = [
          .with {
            $0.addressPrefix = "0.0.0.0"
            $0.prefixLen = .init(0)
          }
        ]
        $0.sourceType = .any
      }
      $0.filters = [
        try .with {
          $0.name = "envoy.filters.network.tcp_proxy"
          $0.typedConfig = try any(
            Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.with {
              $0.statPrefix = "inbound|9080||"
              $0.cluster = "inbound|9080||"
              $0.idleTimeout = .init(seconds: 3600)
              $0.accessLog = [try fileAccessLog()]
              $0.maxConnectAttempts = .init(3)
            })
        }
      ]
      $0.transportSocket = try .with {
        $0.name = "envoy.transport_sockets.tls"
        $0.typedConfig = try any(
          Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext.with {
            $0.commonTlsContext = istioTLS(alpn: ["h2", "http/1.1"], san: nil)
            $0.requireClientCertificate = .init(true)
          })
      }
    }
  }

  static func httpChain() throws -> Envoy_Config_Listener_V3_FilterChain {
    typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager
    return try .with {
      $0.name = "http"
      $0.filterChainMatch = .with {
        $0.transportProtocol = "raw_buffer"
        $0.applicationProtocols = ["http/1.1", "h2c"]
      }
      $0.filters = [
        try .with {
          $0.name = "envoy.filters.network.http_connection_manager"
          $0.typedConfig = try any(
            HCM.with {
              $0.statPrefix = "inbound_0.0.0.0_8080"
              $0.codecType = .auto
              $0.routeConfig = .with {
                $0.name = "inbound|8080||"
                $0.validateClusters = .init(false)
                $0.virtualHosts = [
                  .with {
                    $0.name = "inbound|http|8080"
                    $0.domains = ["*"]
                    $0.routes = [
                      .with {
                        $0.name = "default"
                        $0.match = .with { $0.prefix = "/" }
                        $0.route = .with {
                          $0.weightedClusters = .with {
                            $0.clusters = [
                              .with {
                                $0.name = "inbound|8080||"
                                $0.weight = .init(80)
                              },
                              .with {
                                $0.name = "inbound|8080|v2|"
                                $0.weight = .init(20)
                              },
                            ]
                          }
                          $0.timeout = .init(seconds: 0)
                          $0.maxStreamDuration = .with {
                            $0.maxStreamDuration = .init(seconds: 0)
                            $0.grpcTimeoutHeaderMax = .init(seconds: 0)
                          }
                        }
                        $0.decorator = .with { $0.operation = "productpage.default.svc.cluster.local:9080/*" }
                      }
                    ]
                  }
                ]
              }
              $0.httpFilters = [
                try .with {
                  $0.name = "istio.stats"
                  $0.typedConfig = try any(
                    Udpa_Type_V1_TypedStruct.with {
                      $0.typeURL = "type.googleapis.com/stats.PluginConfig"
                      $0.value = struct_(["disable_host_header_fallback": .init(boolValue: true)])
                    })
                },
                try .with {
                  $0.name = "envoy.filters.http.router"
                  $0.typedConfig = try any(Envoy_Extensions_Filters_Http_Router_V3_Router())
                },
              ]
              $0.useRemoteAddress = .init(false)
              $0.forwardClientCertDetails = .appendForward
              $0.setCurrentClientCertDetails = .with {
                $0.subject = .init(true)
                $0.dns = true
                $0.uri = true
              }
              $0.upgradeConfigs = [.with { $0.upgradeType = "websocket" }]
              $0.streamIdleTimeout = .init(seconds: 0)
              $0.normalizePath = .init(true)
              $0.pathWithEscapedSlashesAction = .keepUnchanged
              $0.commonHTTPProtocolOptions = .with { $0.idleTimeout = .init(seconds: 3600) }
              $0.http2ProtocolOptions = .with { $0.maxConcurrentStreams = .init(100) }
              $0.serverName = "istio-envoy"
              $0.accessLog = [try fileAccessLog()]
            })
        }
      ]
    }
  }

  /// An outbound EDS cluster with Istio's mTLS transport socket and HTTP/2 upstream options.
  static func edsCluster() throws -> Envoy_Config_Cluster_V3_Cluster {
    let name = "outbound|9080||reviews.default.svc.cluster.local"
    return try .with {
      $0.name = name
      $0.type = .eds
      $0.edsClusterConfig = .with {
        $0.edsConfig = adsSource()
        $0.serviceName = name
      }
      $0.connectTimeout = .init(seconds: 10)
      $0.lbPolicy = .leastRequest
      $0.circuitBreakers = .with {
        $0.thresholds = [
          .with {
            $0.maxConnections = .init(4_294_967_295)
            $0.maxPendingRequests = .init(4_294_967_295)
            $0.maxRequests = .init(4_294_967_295)
            $0.maxRetries = .init(4_294_967_295)
            $0.trackRemaining = true
          }
        ]
      }
      $0.commonLbConfig = .with { $0.healthyPanicThreshold = .with { $0.value = 0 } }
      $0.outlierDetection = .with {
        $0.consecutive5Xx = .init(5)
        $0.interval = .init(seconds: 10)
        $0.baseEjectionTime = .init(seconds: 30)
      }
      $0.metadata = .with {
        $0.filterMetadata["istio"] = struct_([
          "services": .init(
            listValue: .init(values: [
              .init(
                structValue: struct_([
                  "name": .init(stringValue: "reviews"), "namespace": .init(stringValue: "default"),
                ]))
            ]))
        ])
      }
      $0.transportSocket = try .with {
        $0.name = "envoy.transport_sockets.tls"
        $0.typedConfig = try any(
          Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext.with {
            $0.sni = "outbound_.9080_._.reviews.default.svc.cluster.local"
            $0.commonTlsContext = istioTLS(
              alpn: ["istio-peer-exchange", "istio"],
              san: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
          })
      }
      $0.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = try any(
        Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.with {
          $0.commonHTTPProtocolOptions = .with {
            $0.idleTimeout = .init(seconds: 3600)
            $0.maxRequestsPerConnection = .init(1024)
          }
          $0.explicitHTTPConfig = .with {
            $0.http2ProtocolOptions = .with { $0.maxConcurrentStreams = .init(1_073_741_824) }
          }
        })
    }
  }

  /// An inbound STATIC cluster with a load assignment, a bind address and an HTTP health check.
  static func staticCluster() -> Envoy_Config_Cluster_V3_Cluster {
    .with {
      $0.name = "inbound|8080||"
      $0.type = .static
      $0.connectTimeout = .init(seconds: 10, nanos: 500_000_000)
      $0.dnsLookupFamily = .v4Only
      $0.upstreamBindConfig = .with { $0.sourceAddress = .with { $0.address = "127.0.0.6" } }
      $0.loadAssignment = .with {
        $0.clusterName = "inbound|8080||"
        $0.endpoints = [
          .with {
            $0.lbEndpoints = [
              .with { $0.endpoint = .with { $0.address = socketAddress("127.0.0.1", 8080) } },
              .with {
                $0.endpoint = .with {
                  $0.address = socketAddress("127.0.0.2", 8080)
                  $0.hostname = "second"
                }
                $0.loadBalancingWeight = .init(3)
                $0.healthStatus = .healthy
              },
            ]
          },
          .with {
            $0.priority = 1
            $0.lbEndpoints = [
              .with {
                $0.endpoint = .with {
                  $0.address = .with {
                    $0.socketAddress = .with {
                      $0.address = "::1"
                      $0.portValue = 8080
                      $0.ipv4Compat = true
                    }
                  }
                }
              }
            ]
          },
        ]
      }
      $0.healthChecks = [
        .with {
          $0.timeout = .init(seconds: 1)
          $0.interval = .init(seconds: 5)
          $0.unhealthyThreshold = .init(2)
          $0.healthyThreshold = .init(1)
          $0.httpHealthCheck = .with {
            $0.path = "/healthz"
            $0.expectedStatuses = [
              .with {
                $0.start = 200
                $0.end = 300
              }
            ]
            $0.codecClientType = .http2
          }
        }
      ]
    }
  }

  /// A CDS response (state of the world) with two clusters packed in Any.
  static func discoveryResponse() throws -> Envoy_Service_Discovery_V3_DiscoveryResponse {
    try .with {
      $0.versionInfo = "2026-01-29T10:00:00Z/7"
      $0.typeURL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
      $0.resources = [try any(try edsCluster()), try any(staticCluster())]
      $0.nonce = "n-1"
      $0.controlPlane = .with { $0.identifier = "{\"Component\":\"istiod\",\"ID\":\"istiod-1\"}" }
    }
  }

  /// What the agent's SDS server sends for `default`.
  static func secret() -> Envoy_Extensions_TransportSockets_Tls_V3_Secret {
    .with {
      $0.name = "default"
      $0.tlsCertificate = .with {
        $0.certificateChain = .with {
          $0.inlineBytes = Data(
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n".utf8)
        }
        $0.privateKey = .with {
          $0.inlineBytes = Data(
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n".utf8)
        }
      }
    }
  }

  /// An incremental EDS subscription that also NACKs the previous response.
  static func deltaRequest() -> Envoy_Service_Discovery_V3_DeltaDiscoveryRequest {
    .with {
      $0.node = .with {
        $0.id = "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local"
        $0.userAgentName = "envoy"
        $0.userAgentBuildVersion = .with {
          $0.version = .with {
            $0.majorNumber = 1
            $0.minorNumber = 37
          }
          $0.metadata = struct_(["build.type": .init(stringValue: "RELEASE")])
        }
        $0.clientFeatures = ["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-ttl"]
      }
      $0.typeURL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
      $0.resourceNamesSubscribe = ["outbound|9080||reviews.default.svc.cluster.local"]
      $0.resourceNamesUnsubscribe = ["outbound|9080||ratings.default.svc.cluster.local"]
      $0.initialResourceVersions = ["a": "1", "b": "2"]
      $0.responseNonce = "n-7"
      $0.errorDetail = .with {
        $0.code = 3
        $0.message = "cluster_name: value length must be at least 1 characters"
      }
    }
  }

  /// An incremental EDS response: one endpoint set in a Resource wrapper, one removal.
  static func deltaResponse() throws -> Envoy_Service_Discovery_V3_DeltaDiscoveryResponse {
    let name = "outbound|9080||reviews.default.svc.cluster.local"
    return try .with {
      $0.systemVersionInfo = "2026-01-29"
      $0.typeURL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
      $0.nonce = "n-8"
      $0.removedResources = ["gone"]
      $0.resources = [
        try .with {
          $0.name = name
          $0.version = "3"
          $0.aliases = ["reviews"]
          $0.ttl = .init(seconds: 30)
          $0.cacheControl = .with { $0.doNotCache = true }
          $0.resource = try any(
            Envoy_Config_Endpoint_V3_ClusterLoadAssignment.with {
              $0.clusterName = name
              $0.endpoints = [
                .with {
                  $0.locality = .with {
                    $0.region = "us-east1"
                    $0.zone = "us-east1-c"
                  }
                  $0.loadBalancingWeight = .init(1)
                  $0.lbEndpoints = [
                    .with {
                      $0.endpoint = .with { $0.address = socketAddress("10.4.2.3", 9080) }
                      $0.healthStatus = .draining
                      $0.metadata = .with {
                        $0.filterMetadata["envoy.transport_socket_match"] = struct_([
                          "tlsMode": .init(stringValue: "istio")
                        ])
                      }
                    }
                  ]
                }
              ]
              $0.policy = .with { $0.overprovisioningFactor = .init(140) }
            })
        }
      ]
    }
  }
}
