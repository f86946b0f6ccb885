// C shim over libnftables and libmnl. Swift imports this module as `CNetfilter`.
// Only our own declarations are exported: the system headers stay inside the .c files.
#ifndef PILOTFISH_CNETFILTER_H
#define PILOTFISH_CNETFILTER_H

#include "pf_netlink.h"
#include "pf_namespace.h"
#include "pf_nft.h"

#endif
