#include <stdlib.h>
#include <string.h>
#include <nftables/libnftables.h>
#include "pf_nft.h"

static char *copy(const char *text) { return strdup(text ? text : ""); }

int pf_nft_run(const char *commands, int json, int check, char **output, char **error) {
  struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) {
    *output = copy("");
    *error = copy("libnftables could not create a context (out of memory?)");
    return -1;
  }
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  if (json) nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
  if (check) nft_ctx_set_dry_run(ctx, true);
  int rc = nft_run_cmd_from_buffer(ctx, commands);
  *output = copy(nft_ctx_get_output_buffer(ctx));
  *error = copy(nft_ctx_get_error_buffer(ctx));
  nft_ctx_free(ctx);
  return rc == 0 ? 0 : -1;
}

void pf_nft_free(char *text) { free(text); }
