// Policy routing over rtnetlink (libmnl): the rule, route and loopback address TPROXY needs.
//
// Every call opens its own NETLINK_ROUTE socket, so it acts on the network namespace of the
// calling thread, shares no state and is safe to call from any thread.
//
// Return values: PF_NL_CHANGED (0) when the kernel state was changed, PF_NL_UNCHANGED (1) when
// it already was as requested (add of something present, delete of something absent), and
// -errno on failure, with `err` (if not NULL) holding a short text such as
// "RTM_NEWRULE fwmark 1337 table 133 (IPv6): Operation not permitted". When the kernel sent an
// extended ACK message it is appended: "...: Invalid argument (kernel: Nexthop device is not up)".
// The *_exists functions return 1 (present), 0 (absent) or -errno.
#ifndef PILOTFISH_PF_NETLINK_H
#define PILOTFISH_PF_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#define PF_NL_CHANGED 0
#define PF_NL_UNCHANGED 1

/// `ip rule add|del fwmark <fwmark>/0xffffffff lookup <table>` for `family` (AF_INET/AF_INET6).
/// Add is idempotent (the kernel would otherwise add a duplicate at the next lower priority).
/// Delete removes every rule that matches exactly (same mark, full mask, table, no other
/// selectors), so duplicates left by earlier runs go too.
int pf_nl_rule(int add, int family, uint32_t fwmark, uint32_t table, char *err, size_t errlen);

/// 1 if a rule `fwmark <fwmark>/0xffffffff lookup <table>` without other selectors exists.
int pf_nl_rule_exists(int family, uint32_t fwmark, uint32_t table, char *err, size_t errlen);

/// `ip route add|del local 0.0.0.0/0 (::/0) dev lo table <table>` (type local, scope host).
int pf_nl_local_default_route(int add, int family, uint32_t table, char *err, size_t errlen);

/// 1 if table <table> holds a local default route via lo for `family`.
int pf_nl_local_default_route_exists(int family, uint32_t table, char *err, size_t errlen);

/// `ip addr add|del <addr>/<prefixlen> dev lo`. `addr` holds 4 (AF_INET) or 16 (AF_INET6)
/// bytes in network order. IPv6 addresses get IFA_F_NODAD.
int pf_nl_loopback_address(int add, int family, const void *addr, unsigned char prefixlen,
                           char *err, size_t errlen);

/// 1 if lo carries <addr>/<prefixlen>.
int pf_nl_loopback_address_exists(int family, const void *addr, unsigned char prefixlen,
                                  char *err, size_t errlen);

#endif
