// C shim over libnftables and libmnl. Swift imports this module as `CNetfilter`.
#ifndef PILOTFISH_CNETFILTER_H
#define PILOTFISH_CNETFILTER_H

#include <nftables/libnftables.h>
#include <libmnl/libmnl.h>
#include "pf_netlink.h"
#include "pf_namespace.h"

#endif
