// The Python half of the wire-compatibility tests, run by `OfficialPeer`.
// It belongs in Helpers/official_peer.py once Package.swift excludes Helpers/ from this test target;
// until then it is kept here, inline, and written to a temporary directory for each test.

enum OfficialPeerScript {
  static let source = #"""
    """The official Envoy protos (PyPI xds-protos) as a peer for EnvoyAPI's wire-compatibility tests.

      official_peer.py probe              exit 0 when xds-protos (and grpcio-tools for `schema`) import
      official_peer.py schema PROTOS OUT  compares every message/enum/service in PROTOS (the hand-written subset)
                                          with the official descriptors; writes a JSON report to OUT
      official_peer.py decode DIR         reads DIR/cases.json written by Swift ([{name, type}], with NAME.bin and
                                          NAME.json), decodes with the official classes, checks, re-encodes;
                                          writes DIR/decoded.json ({name: {errors: [...], json: "..."}})
      official_peer.py encode DIR         builds representative messages with the official classes; writes
                                          NAME.bin (deterministic) and NAME.json and DIR/encoded.json
                                          ([{name, type, exact_bytes}]; exact_bytes: no map whose order may differ)
    """
    import base64
    import importlib
    import json
    import os
    import sys

    OFFICIAL_MODULES = [
        "envoy.config.bootstrap.v3.bootstrap_pb2",
        "envoy.config.cluster.v3.cluster_pb2",
        "envoy.config.endpoint.v3.endpoint_pb2",
        "envoy.config.listener.v3.listener_pb2",
        "envoy.config.route.v3.route_pb2",
        "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
        "envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
        "envoy.extensions.filters.http.router.v3.router_pb2",
        "envoy.extensions.filters.listener.original_dst.v3.original_dst_pb2",
        "envoy.extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2",
        "envoy.extensions.filters.listener.http_inspector.v3.http_inspector_pb2",
        "envoy.extensions.transport_sockets.tls.v3.tls_pb2",
        "envoy.extensions.transport_sockets.tls.v3.secret_pb2",
        "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
        "envoy.extensions.access_loggers.file.v3.file_pb2",
        "envoy.service.discovery.v3.discovery_pb2",
        "envoy.service.discovery.v3.ads_pb2",
        "envoy.service.secret.v3.sds_pb2",
        "udpa.type.v1.typed_struct_pb2",
        "xds.type.v3.typed_struct_pb2",
        "google.rpc.status_pb2",
    ]


    def load_official():
        for name in OFFICIAL_MODULES:
            importlib.import_module(name)


    def module_for(proto_path):
        return proto_path[: -len(".proto")].replace("/", ".") + "_pb2"


    def message_class(full_name):
        from google.protobuf import descriptor_pool, message_factory

        return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


    # --- schema ---------------------------------------------------------------------------------------------------

    def schema(protos_root, out_path):
        import grpc_tools
        from grpc_tools import protoc
        from google.protobuf import descriptor_pb2, descriptor_pool

        files = sorted(
            os.path.relpath(os.path.join(d, f), protos_root)
            for d, _, fs in os.walk(protos_root) for f in fs if f.endswith(".proto")
        )
        wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        desc_path = out_path + ".pb"
        rc = protoc.main(["protoc", "-I" + protos_root, "-I" + wkt, "--descriptor_set_out=" + desc_path] + files)
        if rc != 0:
            raise SystemExit("protoc failed on " + protos_root)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(desc_path, "rb") as f:
            fds.ParseFromString(f.read())

        pool = descriptor_pool.Default()
        errors, newer, stats = [], [], {"files": 0, "messages": 0, "enums": 0, "fields": 0, "services": 0,
                                        "methods": 0, "official_fields_left_out": 0, "skipped_files": []}

        def official_proto(full, kind):
            try:
                d = pool.FindMessageTypeByName(full) if kind == "message" else (
                    pool.FindEnumTypeByName(full) if kind == "enum" else pool.FindServiceByName(full))
            except KeyError:
                return None, None
            p = {"message": descriptor_pb2.DescriptorProto, "enum": descriptor_pb2.EnumDescriptorProto,
                 "service": descriptor_pb2.ServiceDescriptorProto}[kind]()
            d.CopyToProto(p)
            return p, d.file.name

        def check_enum(e, full, fname):
            stats["enums"] += 1
            off, off_file = official_proto(full, "enum")
            if off is None:
                errors.append(f"{full}: no such enum in the official protos")
                return
            if fname and off_file != fname:
                errors.append(f"{full}: defined in {fname}, officially in {off_file}")
            values = {v.name: v.number for v in off.value}
            for v in e.value:
                if v.name not in values:
                    newer.append(f"{full}.{v.name}")
                elif values[v.name] != v.number:
                    errors.append(f"{full}.{v.name} = {v.number}, officially {values[v.name]}")

        def check_message(m, full, fname):
            stats["messages"] += 1
            off, off_file = official_proto(full, "message")
            if off is None:
                errors.append(f"{full}: no such message in the official protos")
                return
            if fname and off_file != fname:
                errors.append(f"{full}: defined in {fname}, officially in {off_file}")
            by_num = {f.number: f for f in off.field}
            by_name = {f.name: f for f in off.field}
            stats["official_fields_left_out"] += len(set(by_num) - {f.number for f in m.field})
            for f in m.field:
                stats["fields"] += 1
                o = by_num.get(f.number)
                if o is None:
                    if f.name in by_name:
                        errors.append(f"{full}.{f.name} = {f.number}, officially {by_name[f.name].number}")
                    else:
                        newer.append(f"{full}.{f.name} = {f.number}")
                    continue
                where = f"{full}.{f.name} ({f.number})"
                if o.name != f.name:
                    errors.append(f"{where}: officially named {o.name}")
                if (o.type, o.label) != (f.type, f.label):
                    errors.append(f"{where}: type/label {f.type}/{f.label}, officially {o.type}/{o.label}")
                if o.type_name.lstrip(".") != f.type_name.lstrip("."):
                    errors.append(f"{where}: type {f.type_name}, officially {o.type_name}")
                mine_oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else ""
                off_oneof = off.oneof_decl[o.oneof_index].name if o.HasField("oneof_index") else ""
                if mine_oneof != off_oneof or f.proto3_optional != o.proto3_optional:
                    errors.append(f"{where}: oneof '{mine_oneof}' optional={f.proto3_optional}, "
                                  f"officially '{off_oneof}' optional={o.proto3_optional}")
                if f.options.deprecated != o.options.deprecated:
                    errors.append(f"{where}: deprecated={f.options.deprecated}, officially {o.options.deprecated}")
            off_reserved = set()
            for r in off.reserved_range:
                off_reserved.update(range(r.start, r.end))
            for r in m.reserved_range:
                for n in range(r.start, r.end):
                    if n not in off_reserved:
                        errors.append(f"{full}: reserves {n}, which is not reserved officially")
            for n in m.reserved_name:
                if n not in off.reserved_name:
                    errors.append(f"{full}: reserves '{n}', which is not reserved officially")
            for e in m.enum_type:
                check_enum(e, full + "." + e.name, None)
            for n in m.nested_type:
                check_message(n, full + "." + n.name, None)

        for fd in fds.file:
            if fd.name.startswith("google/protobuf/"):
                continue
            try:
                importlib.import_module(module_for(fd.name))
            except ImportError:
                stats["skipped_files"].append(fd.name)
                continue
            stats["files"] += 1
            prefix = fd.package + "."
            for e in fd.enum_type:
                check_enum(e, prefix + e.name, fd.name)
            for m in fd.message_type:
                check_message(m, prefix + m.name, fd.name)
            for s in fd.service:
                stats["services"] += 1
                off, off_file = official_proto(prefix + s.name, "service")
                if off is None:
                    errors.append(f"{prefix}{s.name}: no such service in the official protos")
                    continue
                methods = {x.name: x for x in off.method}
                for x in s.method:
                    stats["methods"] += 1
                    o = methods.get(x.name)
                    if o is None:
                        errors.append(f"{prefix}{s.name}/{x.name}: no such method officially")
                        continue
                    mine = (x.input_type.lstrip("."), x.output_type.lstrip("."), x.client_streaming, x.server_streaming)
                    theirs = (o.input_type.lstrip("."), o.output_type.lstrip("."), o.client_streaming, o.server_streaming)
                    if mine != theirs:
                        errors.append(f"{prefix}{s.name}/{x.name}: {mine}, officially {theirs}")
        with open(out_path, "w") as f:
            json.dump({"errors": errors, "newer_than_official": newer, "stats": stats}, f, indent=1)


    # --- decode (Swift wrote it) ----------------------------------------------------------------------------------

    def unknown_field_paths(msg, path="$"):
        """Paths of unknown fields anywhere in msg, looking inside Any (which the official pool can unpack)."""
        from google.protobuf import unknown_fields, descriptor_pool
        from google.protobuf.descriptor import FieldDescriptor

        found = []
        if len(unknown_fields.UnknownFieldSet(msg)):
            found.append(path + " has unknown fields " +
                         str([u.field_number for u in unknown_fields.UnknownFieldSet(msg)]))
        if msg.DESCRIPTOR.full_name == "google.protobuf.Any" and msg.type_url:
            inner = message_class(msg.type_url.split("/")[-1])()
            inner.ParseFromString(msg.value)
            return found + unknown_field_paths(inner, path + "<" + inner.DESCRIPTOR.full_name + ">")
        for field, value in msg.ListFields():
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if field.message_type.GetOptions().map_entry:
                vfield = field.message_type.fields_by_name["value"]
                if vfield.type == FieldDescriptor.TYPE_MESSAGE:
                    for k, v in value.items():
                        found += unknown_field_paths(v, f"{path}.{field.name}[{k!r}]")
            elif field.is_repeated:
                for i, v in enumerate(value):
                    found += unknown_field_paths(v, f"{path}.{field.name}[{i}]")
            else:
                found += unknown_field_paths(value, f"{path}.{field.name}")
        return found


    def has_reorderable_map(msg):
        """True when msg has a map with two or more entries outside any Any: implementations order map entries
        differently (upb's deterministic order is not lexicographic), so only such messages may differ in bytes.
        The bytes inside an Any are carried as they are, so maps in there do not count."""
        from google.protobuf.descriptor import FieldDescriptor

        if msg.DESCRIPTOR.full_name == "google.protobuf.Any":
            return False
        for field, value in msg.ListFields():
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if field.message_type.GetOptions().map_entry:
                if len(value) > 1:
                    return True
                vfield = field.message_type.fields_by_name["value"]
                if vfield.type == FieldDescriptor.TYPE_MESSAGE and any(has_reorderable_map(v) for v in value.values()):
                    return True
            elif field.is_repeated:
                if any(has_reorderable_map(v) for v in value):
                    return True
            elif has_reorderable_map(value):
                return True
        return False


    def unpack(any_msg):
        inner = message_class(any_msg.type_url.split("/")[-1])()
        assert any_msg.Unpack(inner), any_msg.type_url
        return inner


    def checks_for_swift_cases():
        """Field values the Swift fixtures set, read back through the official classes."""
        from envoy.config.core.v3 import config_source_pb2
        from envoy.config.cluster.v3 import cluster_pb2

        def bootstrap(m):
            assert m.node.id == "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local"
            assert m.node.cluster == "productpage.default"
            assert m.node.metadata.fields["NAMESPACE"].string_value == "default"
            assert m.node.locality.zone == "us-east1-b"
            assert m.admin.address.socket_address.address == "127.0.0.1"
            assert m.admin.address.socket_address.port_value == 15000
            ads = m.dynamic_resources.ads_config
            assert ads.api_type == config_source_pb2.ApiConfigSource.DELTA_GRPC
            assert ads.transport_api_version == config_source_pb2.V3
            assert ads.grpc_services[0].envoy_grpc.cluster_name == "xds-grpc"
            assert ads.set_node_on_first_message_only
            assert m.dynamic_resources.cds_config.HasField("ads")
            assert m.dynamic_resources.lds_config.resource_api_version == config_source_pb2.V3
            assert m.static_resources.listeners[0].name == "health"
            assert m.static_resources.clusters[0].name == "xds-grpc"
            assert m.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0] \
                .endpoint.address.pipe.path == "./etc/istio/proxy/XDS"
            assert m.stats_config.use_all_default_tags.value is False
            assert m.stats_config.stats_tags[0].tag_name == "cluster_name"
            assert m.layered_runtime.layers[0].static_layer.fields["overload.global_downstream_max_connections"] \
                .number_value == 2147483647
            assert m.layered_runtime.layers[1].HasField("admin_layer")

        def listener(m):
            assert m.name == "virtualInbound"
            assert m.address.socket_address.port_value == 15006
            assert m.use_original_dst.value
            assert m.traffic_direction == 1  # INBOUND
            assert [f.name for f in m.listener_filters] == [
                "envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector",
                "envoy.filters.listener.http_inspector"]
            assert m.listener_filters[2].filter_disabled.or_match.rules[0].destination_port_range.start == 15017
            assert m.listener_filters[2].filter_disabled.or_match.rules[1].not_match.any_match
            tcp = m.filter_chains[0]
            assert tcp.filter_chain_match.destination_port.value == 9080
            assert list(tcp.filter_chain_match.application_protocols) == ["istio-peer-exchange", "istio"]
            assert tcp.filter_chain_match.prefix_ranges[0].prefix_len.value == 0
            proxy = unpack(tcp.filters[0].typed_config)
            assert proxy.DESCRIPTOR.full_name == "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
            assert proxy.cluster == "inbound|9080||" and proxy.idle_timeout.seconds == 3600
            tls = unpack(tcp.transport_socket.typed_config)
            assert tls.require_client_certificate.value
            assert tls.common_tls_context.tls_certificate_sds_secret_configs[0].name == "default"
            hcm = unpack(m.filter_chains[1].filters[0].typed_config)
            assert hcm.stat_prefix == "inbound_0.0.0.0_8080"
            assert hcm.route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].weight.value == 20
            assert hcm.http_filters[-1].name == "envoy.filters.http.router"
            assert unpack(hcm.http_filters[0].typed_config).type_url == "type.googleapis.com/stats.PluginConfig"
            assert m.filter_chains[1].name == "http"

        def cluster_eds(m):
            assert m.name == "outbound|9080||reviews.default.svc.cluster.local"
            assert m.type == cluster_pb2.Cluster.EDS
            assert m.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
            assert m.eds_cluster_config.service_name == m.name
            assert m.circuit_breakers.thresholds[0].max_connections.value == 4294967295
            assert m.connect_timeout.seconds == 10
            tls = unpack(m.transport_socket.typed_config)
            assert tls.sni == "outbound_.9080_._.reviews.default.svc.cluster.local"
            v = tls.common_tls_context.combined_validation_context
            assert v.default_validation_context.match_subject_alt_names[0].exact == \
                "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
            assert v.validation_context_sds_secret_config.name == "ROOTCA"
            opts = unpack(m.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"])
            assert opts.explicit_http_config.http2_protocol_options.max_concurrent_streams.value == 1073741824

        def cluster_static(m):
            assert m.type == cluster_pb2.Cluster.STATIC
            assert m.upstream_bind_config.source_address.address == "127.0.0.6"
            eps = m.load_assignment.endpoints
            assert eps[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 8080
            assert eps[0].lb_endpoints[1].load_balancing_weight.value == 3
            assert eps[1].priority == 1

        def discovery_response(m):
            assert m.type_url == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
            assert m.version_info == "2026-01-29T10:00:00Z/7" and m.nonce == "n-1"
            assert [unpack(r).name for r in m.resources] == [
                "outbound|9080||reviews.default.svc.cluster.local", "inbound|8080||"]
            assert m.control_plane.identifier.startswith("{\"Component\":\"istiod\"")

        def secret(m):
            assert m.name == "default"
            assert m.tls_certificate.certificate_chain.inline_bytes.startswith(b"-----BEGIN CERTIFICATE-----")
            assert m.tls_certificate.private_key.inline_bytes.startswith(b"-----BEGIN EC PRIVATE KEY-----")

        def delta_request(m):
            assert m.type_url == "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            assert list(m.resource_names_subscribe) == ["outbound|9080||reviews.default.svc.cluster.local"]
            assert dict(m.initial_resource_versions) == {"a": "1", "b": "2"}
            assert m.response_nonce == "n-7" and m.error_detail.code == 3
            assert m.node.user_agent_name == "envoy"

        def delta_response(m):
            assert m.resources[0].name == "outbound|9080||reviews.default.svc.cluster.local"
            assert unpack(m.resources[0].resource).endpoints[0].locality.region == "us-east1"
            assert m.resources[0].ttl.seconds == 30
            assert list(m.removed_resources) == ["gone"]

        return {
            "bootstrap": bootstrap, "listener": listener, "cluster_eds": cluster_eds, "cluster_static": cluster_static,
            "discovery_response": discovery_response, "secret": secret, "delta_request": delta_request,
            "delta_response": delta_response,
        }


    def decode(directory):
        from google.protobuf import json_format

        load_official()
        checks = checks_for_swift_cases()
        with open(os.path.join(directory, "cases.json")) as f:
            cases = json.load(f)
        results = {}
        for case in cases:
            name, errors = case["name"], []
            cls = message_class(case["type"])
            with open(os.path.join(directory, name + ".bin"), "rb") as f:
                data = f.read()
            with open(os.path.join(directory, name + ".json")) as f:
                swift_json = f.read()
            msg = cls()
            msg.ParseFromString(data)
            errors += unknown_field_paths(msg)
            again = msg.SerializeToString(deterministic=True)
            same = (len(again) == len(data) and cls.FromString(again) == msg) if has_reorderable_map(msg) \
                else again == data
            if not same:
                errors.append("re-encoded bytes differ: swift %s, official %s" % (
                    base64.b64encode(data).decode(), base64.b64encode(again).decode()))
            try:
                from_json = json_format.Parse(swift_json, cls())
                if json_format.MessageToDict(from_json) != json_format.MessageToDict(msg):
                    errors.append("Swift's JSON parses to a different message than Swift's binary")
            except json_format.ParseError as e:
                errors.append("Swift's JSON does not parse officially: %s" % e)
            official_json = json_format.MessageToJson(msg)
            if json.loads(official_json) != json.loads(swift_json):
                errors.append("JSON differs:\n swift    %s\n official %s" % (
                    json.dumps(json.loads(swift_json), sort_keys=True), json.dumps(json.loads(official_json), sort_keys=True)))
            if name in checks:
                try:
                    checks[name](msg)
                except AssertionError as e:
                    import traceback
                    errors.append("check failed: " + "".join(traceback.format_exception(e)[-2:]))
            results[name] = {"errors": errors, "json": official_json}
        with open(os.path.join(directory, "decoded.json"), "w") as f:
            json.dump(results, f, indent=1)


    # --- encode (Swift reads it) ----------------------------------------------------------------------------------

    def python_cases():
        from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
        from google.rpc import status_pb2
        from envoy.config.bootstrap.v3 import bootstrap_pb2
        from envoy.config.cluster.v3 import cluster_pb2, circuit_breaker_pb2
        from envoy.config.core.v3 import config_source_pb2, health_check_pb2
        from envoy.config.endpoint.v3 import endpoint_pb2, endpoint_components_pb2
        from envoy.config.route.v3 import route_pb2, route_components_pb2
        from envoy.config.metrics.v3 import stats_pb2
        from envoy.extensions.transport_sockets.tls.v3 import tls_pb2, common_pb2, secret_pb2
        from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as up
        from envoy.service.discovery.v3 import discovery_pb2
        from envoy.type.matcher.v3 import string_pb2

        def packed(m):
            a = any_pb2.Any()
            a.Pack(m)
            return a

        def pipe_cluster(name, path):
            c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
            c.connect_timeout.FromSeconds(1)
            c.load_assignment.cluster_name = name
            c.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address.pipe.path = path
            h2 = up.HttpProtocolOptions()
            h2.explicit_http_config.http2_protocol_options.SetInParent()
            c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Pack(h2)
            return c

        boot = bootstrap_pb2.Bootstrap()
        boot.node.id = "sidecar~10.4.0.7~details-v1-xyz.bookinfo~bookinfo.svc.cluster.local"
        boot.node.cluster = "details.bookinfo"
        boot.node.metadata.update({"ISTIO_VERSION": "1.28.0", "ENVOY_STATUS_PORT": 15021,
                                   "PILOT_SAN": ["istiod.istio-system.svc"], "LABELS": {"app": "details"}})
        boot.node.locality.region = "us-east1"
        boot.admin.address.socket_address.address = "127.0.0.1"
        boot.admin.address.socket_address.port_value = 15000
        boot.admin.profile_path = "/var/lib/istio/data/envoy.prof"
        ads = boot.dynamic_resources.ads_config
        ads.api_type = config_source_pb2.ApiConfigSource.GRPC
        ads.transport_api_version = config_source_pb2.V3
        ads.set_node_on_first_message_only = True
        ads.grpc_services.add().envoy_grpc.cluster_name = "xds-grpc"
        boot.dynamic_resources.cds_config.ads.SetInParent()
        boot.dynamic_resources.cds_config.initial_fetch_timeout.FromSeconds(0)
        boot.dynamic_resources.cds_config.resource_api_version = config_source_pb2.V3
        boot.dynamic_resources.lds_config.ads.SetInParent()
        boot.dynamic_resources.lds_config.resource_api_version = config_source_pb2.V3
        boot.static_resources.clusters.append(pipe_cluster("xds-grpc", "./etc/istio/proxy/XDS"))
        boot.static_resources.clusters.append(pipe_cluster("sds-grpc", "./var/run/secrets/workload-spiffe-uds/socket"))
        boot.cluster_manager.outlier_detection.event_log_path = "/dev/stdout"
        tag = boot.stats_config.stats_tags.add(tag_name="cluster_name")
        tag.regex = "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)"
        boot.stats_config.use_all_default_tags.value = False
        boot.stats_config.stats_matcher.inclusion_list.patterns.add().prefix = "reporter="
        boot.stats_config.stats_matcher.inclusion_list.patterns.add().suffix = "ssl_context_update_by_sds"
        layer = boot.layered_runtime.layers.add(name="global config")
        layer.static_layer.update({"envoy.reloadable_features.http_reject_path_with_fragment": False,
                                   "re2.max_program_size.error_level": 32768})
        boot.layered_runtime.layers.add(name="admin").admin_layer.SetInParent()
        boot.stats_flush_interval.FromMilliseconds(5000)

        reviews = cluster_pb2.Cluster(name="outbound|9080||reviews.bookinfo.svc.cluster.local", type=cluster_pb2.Cluster.EDS)
        reviews.eds_cluster_config.eds_config.ads.SetInParent()
        reviews.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3
        reviews.eds_cluster_config.service_name = reviews.name
        reviews.connect_timeout.FromSeconds(10)
        th = reviews.circuit_breakers.thresholds.add()
        th.max_connections.value = 4294967295
        th.max_retries.value = 4294967295
        reviews.common_lb_config.healthy_panic_threshold.value = 0.0
        reviews.metadata.filter_metadata["istio"].update({"services": [{"name": "reviews", "namespace": "bookinfo"}]})
        up_tls = tls_pb2.UpstreamTlsContext(sni="outbound_.9080_._.reviews.bookinfo.svc.cluster.local")
        ctx = up_tls.common_tls_context
        ctx.alpn_protocols.extend(["istio-peer-exchange", "istio"])
        ctx.tls_params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
        sds = ctx.tls_certificate_sds_secret_configs.add(name="default")
        sds.sds_config.api_config_source.api_type = config_source_pb2.ApiConfigSource.GRPC
        sds.sds_config.api_config_source.transport_api_version = config_source_pb2.V3
        sds.sds_config.api_config_source.grpc_services.add().envoy_grpc.cluster_name = "sds-grpc"
        sds.sds_config.resource_api_version = config_source_pb2.V3
        comb = ctx.combined_validation_context
        comb.default_validation_context.match_subject_alt_names.add().exact = "spiffe://cluster.local/ns/bookinfo/sa/reviews"
        comb.validation_context_sds_secret_config.name = "ROOTCA"
        comb.validation_context_sds_secret_config.sds_config.CopyFrom(sds.sds_config)
        ts = reviews.transport_socket_matches.add(name="tlsMode-istio")
        ts.match.update({"tlsMode": "istio"})
        ts.transport_socket.name = "envoy.transport_sockets.tls"
        ts.transport_socket.typed_config.Pack(up_tls)

        passthrough = cluster_pb2.Cluster(name="PassthroughCluster", type=cluster_pb2.Cluster.ORIGINAL_DST,
                                          lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED)
        passthrough.connect_timeout.FromSeconds(10)
        passthrough.original_dst_lb_config.upstream_port_override.value = 8443

        cds = discovery_pb2.DiscoveryResponse(version_info="v7", type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                              nonce="abc")
        cds.resources.append(packed(reviews))
        cds.resources.append(packed(passthrough))
        cds.control_plane.identifier = "istiod-7d4f"

        cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=reviews.name)
        for i, (zone, ip, health) in enumerate([("us-east1-b", "10.4.1.9", health_check_pb2.HEALTHY),
                                                ("us-east1-c", "10.4.2.3", health_check_pb2.DRAINING)]):
            loc = cla.endpoints.add()
            loc.locality.region, loc.locality.zone = "us-east1", zone
            loc.load_balancing_weight.value = 2
            loc.priority = i
            lb = loc.lb_endpoints.add(health_status=health)
            lb.endpoint.address.socket_address.address = ip
            lb.endpoint.address.socket_address.port_value = 9080
            lb.load_balancing_weight.value = 1
            lb.metadata.filter_metadata["envoy.transport_socket_match"].update({"tlsMode": "istio"})
        cla.policy.overprovisioning_factor.value = 140
        delta = discovery_pb2.DeltaDiscoveryResponse(system_version_info="2026-01-29", nonce="d1",
                                                     type_url="type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment")
        res = delta.resources.add(name=reviews.name, version="v3")
        res.resource.Pack(cla)
        res.aliases.append("reviews")
        delta.removed_resources.append("outbound|9080||ratings.bookinfo.svc.cluster.local")

        rc = route_pb2.RouteConfiguration(name="9080")
        rc.validate_clusters.value = False
        vh = rc.virtual_hosts.add(name="reviews.bookinfo.svc.cluster.local:9080")
        vh.domains.extend(["reviews.bookinfo.svc.cluster.local", "reviews", "10.96.0.12"])
        r = vh.routes.add(name="v2-header")
        r.match.prefix = "/"
        h = r.match.headers.add(name="end-user")
        h.string_match.exact = "jason"
        r.route.cluster = "outbound|9080|v2|reviews.bookinfo.svc.cluster.local"
        r.route.timeout.FromSeconds(0)
        r.route.retry_policy.retry_on = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
        r.route.retry_policy.num_retries.value = 2
        r.route.retry_policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts")
        r.route.retry_policy.host_selection_retry_max_attempts = 5
        r.route.retry_policy.retriable_status_codes.append(503)
        r.route.hash_policy.add().header.header_name = "x-user"
        r.route.max_stream_duration.max_stream_duration.FromSeconds(0)
        w = vh.routes.add(name="split")
        w.match.prefix = "/"
        w.match.case_sensitive.value = True
        for sub, weight in [("v1", 75), ("v3", 25)]:
            cw = w.route.weighted_clusters.clusters.add(name=f"outbound|9080|{sub}|reviews.bookinfo.svc.cluster.local")
            cw.weight.value = weight
        d = vh.routes.add(name="teapot")
        d.match.path = "/teapot"
        d.direct_response.status = 418
        d.direct_response.body.inline_string = "short and stout"
        red = vh.routes.add(name="redirect")
        red.match.safe_regex.regex = "^/old/.*"
        red.redirect.https_redirect = True
        red.redirect.response_code = route_components_pb2.RedirectAction.PERMANENT_REDIRECT
        vh.include_request_attempt_count = True

        secret = secret_pb2.Secret(name="ROOTCA")
        secret.validation_context.trusted_ca.inline_bytes = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
        sds_resp = discovery_pb2.DiscoveryResponse(version_info="2026-01-29T10:00:00Z", nonce="s1",
                                                   type_url="type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret")
        sds_resp.resources.append(packed(secret))

        nack = discovery_pb2.DiscoveryRequest(version_info="v6", response_nonce="abc",
                                              type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
        nack.node.id = boot.node.id
        nack.resource_names.extend(["a", "b"])
        nack.error_detail.code = 3
        nack.error_detail.message = "cluster 'x': unknown field"
        return [
            ("bootstrap", boot), ("cds_response", cds), ("eds_delta_response", delta), ("route_configuration", rc),
            ("sds_response", sds_resp), ("nack_request", nack),
        ]


    def encode(directory):
        from google.protobuf import json_format

        load_official()
        listing = []
        for name, msg in python_cases():
            with open(os.path.join(directory, name + ".bin"), "wb") as f:
                f.write(msg.SerializeToString(deterministic=True))
            with open(os.path.join(directory, name + ".json"), "w") as f:
                f.write(json_format.MessageToJson(msg))
            listing.append({"name": name, "type": msg.DESCRIPTOR.full_name, "exact_bytes": not has_reorderable_map(msg)})
        with open(os.path.join(directory, "encoded.json"), "w") as f:
            json.dump(listing, f, indent=1)


    def probe(what):
        load_official()
        if what == "schema":
            import grpc_tools.protoc  # noqa: F401


    if __name__ == "__main__":
        command = sys.argv[1]
        if command == "probe":
            probe(sys.argv[2] if len(sys.argv) > 2 else "")
        elif command == "schema":
            schema(sys.argv[2], sys.argv[3])
        elif command == "decode":
            decode(sys.argv[2])
        elif command == "encode":
            encode(sys.argv[2])
        else:
            raise SystemExit("unknown command " + command)
    """#
}
