// Policy routing over rtnetlink with libmnl. See include/pf_netlink.h for the contract.
//
// Design: one request per fresh NETLINK_ROUTE socket (so the calling thread's network namespace
// is the one acted on and nothing is shared between threads); every request asks for an ACK;
// replies are checked for our sequence number and port id by mnl_cb_run2, and NLMSG_ERROR /
// NLMSG_DONE are handled here so that the kernel's errno and extended-ACK text reach the caller.
#define _GNU_SOURCE
#include "pf_netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

// Size of the receive buffer: large enough for one kernel dump batch (libmnl's
// MNL_SOCKET_DUMP_SIZE, which the installed libmnl may not define).
#define PF_NL_RECV_SIZE 32768
// Upper bound on matching rules collected by one dump (duplicates are deleted in rounds).
#define PF_NL_MAX_RULES 64
#define PF_NL_MAX_ROUNDS 16
// A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried this often.
#define PF_NL_DUMP_TRIES 4

// ---------------------------------------------------------------------------------------------
// Error text

static const char *pf_nl_family_name(int family) {
  return family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "unknown family";
}

static const char *pf_nl_strerror(int e, char *buf, size_t len) {
#if defined(__GLIBC__)
  return strerror_r(e, buf, len);  // GNU variant: may return a static string instead of buf
#else
  if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
  return buf;
#endif
}

// Fills `err` with "<what>: <strerror(e)>[ (<prefix><text>)]" and returns -e.
static int pf_nl_fail_text(char *err, size_t errlen, int e, const char *prefix, const char *text,
                           const char *what) {
  if (e <= 0) e = EPROTO;
  if (err && errlen > 0) {
    char sbuf[128];
    const char *s = pf_nl_strerror(e, sbuf, sizeof sbuf);
    if (text && text[0])
      snprintf(err, errlen, "%s: %s (%s%s)", what, s, prefix, text);
    else
      snprintf(err, errlen, "%s: %s", what, s);
  }
  return -e;
}

// A failure the kernel reported, with its extended-ACK text `ext` (may be empty).
static int pf_nl_fail(char *err, size_t errlen, int e, const char *ext, const char *what) {
  return pf_nl_fail_text(err, errlen, e, "kernel: ", ext, what);
}

// A failure this layer detected, explained by `note`.
static int pf_nl_fail_note(char *err, size_t errlen, int e, const char *note, const char *what) {
  return pf_nl_fail_text(err, errlen, e, "", note, what);
}

static void pf_nl_clear(char *err, size_t errlen) {
  if (err && errlen > 0) err[0] = '\0';
}

// ---------------------------------------------------------------------------------------------
// One request/response exchange

/// State of one exchange. `kernel_errno` is set only from an NLMSG_ERROR or NLMSG_DONE the
/// kernel sent, so protocol failures (wrong sequence, wrong port) are never mistaken for it.
struct pf_nl_ctx {
  int kernel_errno;
  char ext_msg[160];
  mnl_cb_t data_cb;
  void *user;
};

static int pf_nl_ext_attr_cb(const struct nlattr *attr, void *data) {
  struct pf_nl_ctx *ctx = data;
  if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
      mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
    snprintf(ctx->ext_msg, sizeof ctx->ext_msg, "%s", mnl_attr_get_str(attr));
    // The kernel's texts often end in a period; the caller adds its own punctuation.
    size_t n = strlen(ctx->ext_msg);
    while (n > 0 && (ctx->ext_msg[n - 1] == '.' || ctx->ext_msg[n - 1] == '\n'))
      ctx->ext_msg[--n] = '\0';
  }
  return MNL_CB_OK;
}

// Reads the extended-ACK attributes that follow `skip` payload bytes, if the kernel sent any.
static void pf_nl_read_ext_ack(const struct nlmsghdr *nlh, size_t skip, struct pf_nl_ctx *ctx) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  size_t payload = mnl_nlmsg_get_payload_len(nlh);
  if (MNL_ALIGN(skip) >= payload) return;
  mnl_attr_parse(nlh, (unsigned int)skip, pf_nl_ext_attr_cb, ctx);
}

static int pf_nl_on_error(const struct nlmsghdr *nlh, void *data) {
  struct pf_nl_ctx *ctx = data;
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
    ctx->kernel_errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
  if (e->error == 0) return MNL_CB_STOP;  // the ACK
  size_t skip = sizeof(struct nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
    skip += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
  pf_nl_read_ext_ack(nlh, skip, ctx);
  ctx->kernel_errno = e->error < 0 ? -e->error : e->error;
  return MNL_CB_ERROR;
}

static int pf_nl_on_done(const struct nlmsghdr *nlh, void *data) {
  struct pf_nl_ctx *ctx = data;
  // Since Linux 4.x a dump's NLMSG_DONE carries an int: 0, or the error that ended the dump.
  if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
    int status;
    memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof status);
    if (status < 0) {
      pf_nl_read_ext_ack(nlh, sizeof(int), ctx);
      ctx->kernel_errno = -status;
      return MNL_CB_ERROR;
    }
  }
  return MNL_CB_STOP;
}

static int pf_nl_on_noop(const struct nlmsghdr *nlh, void *data) {
  (void)nlh;
  (void)data;
  return MNL_CB_OK;
}

static int pf_nl_on_overrun(const struct nlmsghdr *nlh, void *data) {
  (void)nlh;
  struct pf_nl_ctx *ctx = data;
  ctx->kernel_errno = ENOBUFS;
  return MNL_CB_ERROR;
}

static int pf_nl_on_data(const struct nlmsghdr *nlh, void *data) {
  struct pf_nl_ctx *ctx = data;
  return ctx->data_cb ? ctx->data_cb(nlh, ctx->user) : MNL_CB_OK;
}

/// Sends `nlh` (a request with NLM_F_ACK or NLM_F_DUMP set) on a fresh socket and processes
/// replies until the ACK or the end of the dump. Data messages go to `data_cb(nlh, user)`.
/// Returns 0 or -errno; on failure `ext` (at least 160 bytes) receives the kernel's text, if any.
static int pf_nl_exchange(struct nlmsghdr *nlh, mnl_cb_t data_cb, void *user, char *ext) {
  ext[0] = '\0';
  struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
  if (nl == NULL) return -errno;
  int result = 0;
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    result = -errno;
    goto out;
  }
  // Best effort: kernels without these options still answer, just without the text.
  int on = 1;
  (void)mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &on, sizeof on);
  (void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &on, sizeof on);

  unsigned int portid = mnl_socket_get_portid(nl);
  unsigned int seq = (unsigned int)time(NULL);
  if (seq == 0) seq = 1;  // seq 0 would disable libmnl's sequence check
  nlh->nlmsg_seq = seq;

  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    result = -errno;
    goto out;
  }

  char *buf = malloc(PF_NL_RECV_SIZE);
  if (buf == NULL) {
    result = -ENOMEM;
    goto out;
  }
  mnl_cb_t ctl[NLMSG_MIN_TYPE] = {0};
  ctl[NLMSG_NOOP] = pf_nl_on_noop;
  ctl[NLMSG_ERROR] = pf_nl_on_error;
  ctl[NLMSG_DONE] = pf_nl_on_done;
  ctl[NLMSG_OVERRUN] = pf_nl_on_overrun;
  struct pf_nl_ctx ctx = {.kernel_errno = 0, .data_cb = data_cb, .user = user};

  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf, PF_NL_RECV_SIZE);
    if (n < 0) {
      result = errno == ENOSPC ? -EMSGSIZE : -errno;  // ENOSPC: reply truncated
      break;
    }
    int ret = mnl_cb_run2(buf, (size_t)n, seq, portid, pf_nl_on_data, &ctx, ctl, NLMSG_MIN_TYPE);
    if (ret == MNL_CB_ERROR) {
      if (ctx.kernel_errno != 0) {
        result = -ctx.kernel_errno;
        snprintf(ext, 160, "%s", ctx.ext_msg);
      } else if (errno == EINTR) {
        result = -EINTR;  // NLM_F_DUMP_INTR: the caller may retry
      } else {
        result = -EPROTO;  // a reply that is not ours (sequence or port id) or is malformed
      }
      break;
    }
    if (ret == MNL_CB_STOP) break;
  }
  free(buf);
out:
  mnl_socket_close(nl);
  return result;
}

/// A dump that is retried while the kernel reports it as interrupted by a concurrent change.
/// `reset(user)` is called before each attempt.
static int pf_nl_dump(struct nlmsghdr *nlh, mnl_cb_t data_cb, void (*reset)(void *), void *user,
                      char *ext) {
  int r = -EINTR;
  for (int i = 0; i < PF_NL_DUMP_TRIES && r == -EINTR; i++) {
    reset(user);
    r = pf_nl_exchange(nlh, data_cb, user, ext);
  }
  return r;
}

static int pf_nl_check_family(int family, char *err, size_t errlen, const char *what) {
  if (family == AF_INET || family == AF_INET6) return 0;
  return pf_nl_fail_note(err, errlen, EAFNOSUPPORT, "family must be AF_INET or AF_INET6", what);
}

static int pf_nl_lo_index(uint32_t *index, char *err, size_t errlen, const char *what) {
  unsigned int i = if_nametoindex("lo");
  if (i == 0) return pf_nl_fail_note(err, errlen, errno ? errno : ENODEV, "no interface lo", what);
  *index = i;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Rules: fwmark <mark>/0xffffffff lookup <table>

struct pf_nl_rule_query {
  int family;
  uint32_t mark;
  uint32_t table;
  size_t count;  // matches seen (may exceed PF_NL_MAX_RULES)
  uint32_t prios[PF_NL_MAX_RULES];
};

static void pf_nl_rule_reset(void *user) {
  ((struct pf_nl_rule_query *)user)->count = 0;
}

struct pf_nl_attrs {
  const struct nlattr *tb[64];
  int max;
};

static int pf_nl_attr_cb(const struct nlattr *attr, void *data) {
  struct pf_nl_attrs *a = data;
  int type = mnl_attr_get_type(attr);
  if (type >= 0 && type <= a->max && type < 64) a->tb[type] = attr;
  return MNL_CB_OK;
}

static int pf_nl_u32(const struct nlattr *attr, uint32_t *out) {
  if (attr == NULL || mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return 0;
  *out = mnl_attr_get_u32(attr);
  return 1;
}

static int pf_nl_rule_cb(const struct nlmsghdr *nlh, void *user) {
  struct pf_nl_rule_query *q = user;
  if (nlh->nlmsg_type != RTM_NEWRULE) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct fib_rule_hdr)) return MNL_CB_OK;
  const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
  if (frh->family != q->family || frh->action != FR_ACT_TO_TBL) return MNL_CB_OK;
  if (frh->src_len != 0 || frh->dst_len != 0 || frh->tos != 0) return MNL_CB_OK;
  if (frh->flags & FIB_RULE_INVERT) return MNL_CB_OK;

  struct pf_nl_attrs a = {.max = FRA_MAX};
  memset(a.tb, 0, sizeof a.tb);
  if (mnl_attr_parse(nlh, sizeof *frh, pf_nl_attr_cb, &a) < 0) return MNL_CB_OK;

  // Any further selector makes it a different rule than ours.
  static const int selectors[] = {FRA_DST,       FRA_SRC,      FRA_IIFNAME,     FRA_OIFNAME,
                                  FRA_GOTO,      FRA_FLOW,     FRA_TUN_ID,      FRA_L3MDEV,
                                  FRA_UID_RANGE, FRA_IP_PROTO, FRA_SPORT_RANGE, FRA_DPORT_RANGE};
  for (size_t i = 0; i < sizeof selectors / sizeof selectors[0]; i++)
    if (a.tb[selectors[i]] != NULL) return MNL_CB_OK;
  // Recent kernels always report the suppressors, with -1 meaning "unset".
  uint32_t suppress;
  if (pf_nl_u32(a.tb[FRA_SUPPRESS_PREFIXLEN], &suppress) && suppress != 0xffffffffu)
    return MNL_CB_OK;
  if (pf_nl_u32(a.tb[FRA_SUPPRESS_IFGROUP], &suppress) && suppress != 0xffffffffu)
    return MNL_CB_OK;

  uint32_t table = frh->table, mark = 0, mask = 0, prio = 0;
  (void)pf_nl_u32(a.tb[FRA_TABLE], &table);
  if (!pf_nl_u32(a.tb[FRA_FWMARK], &mark)) return MNL_CB_OK;
  if (!pf_nl_u32(a.tb[FRA_FWMASK], &mask)) mask = mark ? 0xffffffffu : 0;
  (void)pf_nl_u32(a.tb[FRA_PRIORITY], &prio);  // absent means priority 0
  if (table != q->table || mark != q->mark || mask != 0xffffffffu) return MNL_CB_OK;

  if (q->count < PF_NL_MAX_RULES) q->prios[q->count] = prio;
  q->count++;
  return MNL_CB_OK;
}

static int pf_nl_rule_find(struct pf_nl_rule_query *q, char *ext) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETRULE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof *frh);
  frh->family = (uint8_t)q->family;
  return pf_nl_dump(nlh, pf_nl_rule_cb, pf_nl_rule_reset, q, ext);
}

// One RTM_NEWRULE / RTM_DELRULE. `prio` < 0 leaves the priority to the kernel.
static int pf_nl_rule_request(int add, int family, uint32_t mark, uint32_t table, int64_t prio,
                              char *ext) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof *frh);
  frh->family = (uint8_t)family;
  frh->table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
  frh->action = FR_ACT_TO_TBL;
  mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
  mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
  mnl_attr_put_u32(nlh, FRA_TABLE, table);
  if (prio >= 0) mnl_attr_put_u32(nlh, FRA_PRIORITY, (uint32_t)prio);
  return pf_nl_exchange(nlh, NULL, NULL, ext);
}

int pf_nl_rule_exists(int family, uint32_t fwmark, uint32_t table, char *err, size_t errlen) {
  char what[128], ext[160];
  snprintf(what, sizeof what, "RTM_GETRULE fwmark %u table %u (%s)", fwmark, table,
           pf_nl_family_name(family));
  pf_nl_clear(err, errlen);
  int r = pf_nl_check_family(family, err, errlen, what);
  if (r < 0) return r;
  struct pf_nl_rule_query q = {.family = family, .mark = fwmark, .table = table};
  r = pf_nl_rule_find(&q, ext);
  if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
  return q.count > 0;
}

int pf_nl_rule(int add, int family, uint32_t fwmark, uint32_t table, char *err, size_t errlen) {
  char what[128], ext[160];
  snprintf(what, sizeof what, "%s fwmark %u table %u (%s)", add ? "RTM_NEWRULE" : "RTM_DELRULE",
           fwmark, table, pf_nl_family_name(family));
  pf_nl_clear(err, errlen);
  int r = pf_nl_check_family(family, err, errlen, what);
  if (r < 0) return r;
  struct pf_nl_rule_query q = {.family = family, .mark = fwmark, .table = table};

  if (add) {
    // The kernel's EEXIST check for rules includes the priority it picks, so adding without
    // looking first would stack a duplicate one priority lower on every run.
    r = pf_nl_rule_find(&q, ext);
    if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
    if (q.count > 0) return PF_NL_UNCHANGED;
    r = pf_nl_rule_request(1, family, fwmark, table, -1, ext);
    if (r == -EEXIST) return PF_NL_UNCHANGED;
    if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
    return PF_NL_CHANGED;
  }

  // Delete every exact match, by priority, so nothing with extra selectors is hit.
  int changed = 0;
  for (int round = 0; round < PF_NL_MAX_ROUNDS; round++) {
    r = pf_nl_rule_find(&q, ext);
    if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
    if (q.count == 0) return changed ? PF_NL_CHANGED : PF_NL_UNCHANGED;
    size_t n = q.count < PF_NL_MAX_RULES ? q.count : PF_NL_MAX_RULES;
    for (size_t i = 0; i < n; i++) {
      r = pf_nl_rule_request(0, family, fwmark, table, q.prios[i], ext);
      if (r == -ENOENT) continue;  // removed concurrently
      if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
      changed = 1;
    }
  }
  return pf_nl_fail_note(err, errlen, EBUSY, "matching rules keep reappearing", what);
}

// ---------------------------------------------------------------------------------------------
// Routes: local default dev lo table <table>

struct pf_nl_route_query {
  int family;
  uint32_t table;
  uint32_t oif;
  int found;
};

static void pf_nl_route_reset(void *user) {
  ((struct pf_nl_route_query *)user)->found = 0;
}

static int pf_nl_route_cb(const struct nlmsghdr *nlh, void *user) {
  struct pf_nl_route_query *q = user;
  if (nlh->nlmsg_type != RTM_NEWROUTE) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtmsg)) return MNL_CB_OK;
  const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
  if (rtm->rtm_family != q->family || rtm->rtm_type != RTN_LOCAL) return MNL_CB_OK;
  if (rtm->rtm_dst_len != 0 || rtm->rtm_src_len != 0 || rtm->rtm_tos != 0) return MNL_CB_OK;

  struct pf_nl_attrs a = {.max = RTA_MAX};
  memset(a.tb, 0, sizeof a.tb);
  if (mnl_attr_parse(nlh, sizeof *rtm, pf_nl_attr_cb, &a) < 0) return MNL_CB_OK;
  uint32_t table = rtm->rtm_table, oif = 0;
  (void)pf_nl_u32(a.tb[RTA_TABLE], &table);
  if (!pf_nl_u32(a.tb[RTA_OIF], &oif)) return MNL_CB_OK;
  if (table == q->table && oif == q->oif) q->found = 1;
  return MNL_CB_OK;
}

static int pf_nl_route_find(struct pf_nl_route_query *q, char *ext) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
  rtm->rtm_family = (uint8_t)q->family;
  return pf_nl_dump(nlh, pf_nl_route_cb, pf_nl_route_reset, q, ext);
}

int pf_nl_local_default_route_exists(int family, uint32_t table, char *err, size_t errlen) {
  char what[128], ext[160];
  snprintf(what, sizeof what, "RTM_GETROUTE local default dev lo table %u (%s)", table,
           pf_nl_family_name(family));
  pf_nl_clear(err, errlen);
  int r = pf_nl_check_family(family, err, errlen, what);
  if (r < 0) return r;
  struct pf_nl_route_query q = {.family = family, .table = table};
  if ((r = pf_nl_lo_index(&q.oif, err, errlen, what)) < 0) return r;
  r = pf_nl_route_find(&q, ext);
  if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
  return q.found;
}

int pf_nl_local_default_route(int add, int family, uint32_t table, char *err, size_t errlen) {
  char what[128], ext[160];
  snprintf(what, sizeof what, "%s local default dev lo table %u (%s)",
           add ? "RTM_NEWROUTE" : "RTM_DELROUTE", table, pf_nl_family_name(family));
  pf_nl_clear(err, errlen);
  int r = pf_nl_check_family(family, err, errlen, what);
  if (r < 0) return r;
  struct pf_nl_route_query q = {.family = family, .table = table};
  if ((r = pf_nl_lo_index(&q.oif, err, errlen, what)) < 0) return r;

  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
  rtm->rtm_family = (uint8_t)family;
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
  rtm->rtm_type = RTN_LOCAL;
  if (add) {
    rtm->rtm_protocol = RTPROT_BOOT;  // what `ip route add` uses
    rtm->rtm_scope = RT_SCOPE_HOST;
  } else {
    rtm->rtm_protocol = RTPROT_UNSPEC;  // match whoever installed it
    rtm->rtm_scope = RT_SCOPE_NOWHERE;  // match any scope
  }
  mnl_attr_put_u32(nlh, RTA_TABLE, table);
  mnl_attr_put_u32(nlh, RTA_OIF, q.oif);

  r = pf_nl_exchange(nlh, NULL, NULL, ext);
  if (r == 0) return PF_NL_CHANGED;
  if (!add && (r == -ESRCH || r == -ENOENT)) return PF_NL_UNCHANGED;
  if (add && r == -EEXIST) {
    // EEXIST also means "a different route to the same prefix": only ours counts as done.
    char ext2[160];
    int found = pf_nl_route_find(&q, ext2);
    if (found == 0 && q.found) return PF_NL_UNCHANGED;
    return pf_nl_fail_note(err, errlen, EEXIST, "the table holds a different default route", what);
  }
  return pf_nl_fail(err, errlen, -r, ext, what);
}

// ---------------------------------------------------------------------------------------------
// Addresses on lo

struct pf_nl_addr_query {
  int family;
  uint32_t index;
  unsigned char prefixlen;
  unsigned char addr[16];
  size_t addrlen;
  int found;
};

static void pf_nl_addr_reset(void *user) {
  ((struct pf_nl_addr_query *)user)->found = 0;
}

static int pf_nl_addr_cb(const struct nlmsghdr *nlh, void *user) {
  struct pf_nl_addr_query *q = user;
  if (nlh->nlmsg_type != RTM_NEWADDR) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifaddrmsg)) return MNL_CB_OK;
  const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
  if (ifa->ifa_family != q->family || ifa->ifa_index != q->index) return MNL_CB_OK;
  if (ifa->ifa_prefixlen != q->prefixlen) return MNL_CB_OK;

  struct pf_nl_attrs a = {.max = IFA_MAX};
  memset(a.tb, 0, sizeof a.tb);
  if (mnl_attr_parse(nlh, sizeof *ifa, pf_nl_attr_cb, &a) < 0) return MNL_CB_OK;
  // IPv6 reports the address in IFA_ADDRESS (IFA_LOCAL only with a peer); IPv4 in IFA_LOCAL.
  const struct nlattr *attr = a.tb[IFA_LOCAL] ? a.tb[IFA_LOCAL] : a.tb[IFA_ADDRESS];
  if (attr == NULL || mnl_attr_get_payload_len(attr) != q->addrlen) return MNL_CB_OK;
  if (memcmp(mnl_attr_get_payload(attr), q->addr, q->addrlen) == 0) q->found = 1;
  return MNL_CB_OK;
}

// Validates the arguments and fills `q` and `what`.
static int pf_nl_addr_setup(struct pf_nl_addr_query *q, const char *verb, int family,
                            const void *addr, unsigned char prefixlen, char *what,
                            size_t whatlen, char *err, size_t errlen) {
  char text[INET6_ADDRSTRLEN] = "?";
  if ((family == AF_INET || family == AF_INET6) && addr != NULL)
    inet_ntop(family, addr, text, sizeof text);
  snprintf(what, whatlen, "%s %s/%u dev lo (%s)", verb, text, prefixlen,
           pf_nl_family_name(family));
  int r = pf_nl_check_family(family, err, errlen, what);
  if (r < 0) return r;
  q->family = family;
  q->addrlen = family == AF_INET ? 4 : 16;
  if (addr == NULL || prefixlen > q->addrlen * 8)
    return pf_nl_fail_note(err, errlen, EINVAL, "bad address or prefix length", what);
  memcpy(q->addr, addr, q->addrlen);
  q->prefixlen = prefixlen;
  return pf_nl_lo_index(&q->index, err, errlen, what);
}

static int pf_nl_addr_find(struct pf_nl_addr_query *q, char *ext) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
  ifa->ifa_family = (uint8_t)q->family;
  return pf_nl_dump(nlh, pf_nl_addr_cb, pf_nl_addr_reset, q, ext);
}

int pf_nl_loopback_address_exists(int family, const void *addr, unsigned char prefixlen,
                                  char *err, size_t errlen) {
  char what[128], ext[160];
  struct pf_nl_addr_query q = {0};
  pf_nl_clear(err, errlen);
  int r = pf_nl_addr_setup(&q, "RTM_GETADDR", family, addr, prefixlen, what, sizeof what, err,
                           errlen);
  if (r < 0) return r;
  r = pf_nl_addr_find(&q, ext);
  if (r < 0) return pf_nl_fail(err, errlen, -r, ext, what);
  return q.found;
}

int pf_nl_loopback_address(int add, int family, const void *addr, unsigned char prefixlen,
                           char *err, size_t errlen) {
  char what[128], ext[160];
  struct pf_nl_addr_query q = {0};
  pf_nl_clear(err, errlen);
  int r = pf_nl_addr_setup(&q, add ? "RTM_NEWADDR" : "RTM_DELADDR", family, addr, prefixlen,
                           what, sizeof what, err, errlen);
  if (r < 0) return r;

  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
  ifa->ifa_family = (uint8_t)family;
  ifa->ifa_prefixlen = prefixlen;
  ifa->ifa_index = q.index;
  // Same default as `ip addr add`: host scope for 127/8, global otherwise (IPv6 derives its own).
  ifa->ifa_scope = (family == AF_INET && q.addr[0] == 127) ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  if (add && family == AF_INET6) {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  mnl_attr_put(nlh, IFA_LOCAL, q.addrlen, q.addr);
  mnl_attr_put(nlh, IFA_ADDRESS, q.addrlen, q.addr);

  r = pf_nl_exchange(nlh, NULL, NULL, ext);
  if (r == 0) return PF_NL_CHANGED;
  if (!add && (r == -EADDRNOTAVAIL || r == -ENOENT || r == -ESRCH)) return PF_NL_UNCHANGED;
  if (add && r == -EEXIST) {
    // EEXIST also covers the same address with another prefix length.
    char ext2[160];
    int found = pf_nl_addr_find(&q, ext2);
    if (found == 0 && q.found) return PF_NL_UNCHANGED;
    return pf_nl_fail_note(err, errlen, EEXIST,
                           "lo holds this address with a different prefix length", what);
  }
  return pf_nl_fail(err, errlen, -r, ext, what);
}
