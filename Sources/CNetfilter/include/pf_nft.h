#ifndef PILOTFISH_PF_NFT_H
#define PILOTFISH_PF_NFT_H

/// Runs `commands` as one libnftables transaction (one netlink batch: all or nothing) in a fresh context.
/// `json` lists in JSON; `check` asks the kernel to validate without committing.
/// Returns 0 on success, -1 on failure (`*error` then holds libnftables' message). `*output` and `*error` are
/// always set to strings the caller releases with pf_nft_free.
///
/// This header deliberately includes no system header: libnftables.h pulls in <sys/select.h>, and exporting
/// it from this module makes Clang's module builds see two definitions of fd_set (nondeterministically).
int pf_nft_run(const char *commands, int json, int check, char **output, char **error);

void pf_nft_free(char *text);

#endif
