#ifndef PILOTFISH_PF_NAMESPACE_H
#define PILOTFISH_PF_NAMESPACE_H

/// Moves the calling thread into the network namespace open at `fd` (setns with CLONE_NEWNET).
/// Returns 0, or -1 with errno set.
int pf_setns_net(int fd);

#endif
