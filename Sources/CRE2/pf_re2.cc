// The RE2 side of CRE2.h. Every RE2 object is built with RE2::Quiet semantics (UTF-8, no error logging)
// and a caller-chosen memory budget; nothing here keeps state besides the compiled RE2.
#include "CRE2.h"

#include <re2/re2.h>

#include <new>
#include <string>

struct pf_re2 {
  re2::RE2 regex;
  pf_re2(const re2::StringPiece &pattern, const re2::RE2::Options &options) : regex(pattern, options) {}
};

namespace {
constexpr int kMaxGroups = 64;
// An empty Swift string may come as a NULL pointer; RE2 would then report an empty group at NULL, which
// reads as "did not participate". Match such a text at a real (empty) address instead.
const char kEmpty[1] = {0};
inline const char *bytes(const void *text) { return text ? static_cast<const char *>(text) : kEmpty; }
}

extern "C" pf_re2 *pf_re2_compile(const void *pattern, size_t length, int64_t max_mem) {
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  options.set_log_errors(false);
  if (max_mem > 0) options.set_max_mem(max_mem);
  return new (std::nothrow) pf_re2(re2::StringPiece(bytes(pattern), length), options);
}

extern "C" void pf_re2_free(pf_re2 *re) { delete re; }

extern "C" int pf_re2_ok(const pf_re2 *re) { return re->regex.ok() ? 1 : 0; }

extern "C" const char *pf_re2_error(const pf_re2 *re) { return re->regex.error().c_str(); }

extern "C" int pf_re2_program_size(const pf_re2 *re) {
  return re->regex.ok() ? re->regex.ProgramSize() : -1;
}

extern "C" int pf_re2_capture_count(const pf_re2 *re) {
  return re->regex.ok() ? re->regex.NumberOfCapturingGroups() : -1;
}

extern "C" int pf_re2_full_match(const pf_re2 *re, const void *text, size_t length) {
  if (!re->regex.ok()) return 0;
  return re->regex.Match(re2::StringPiece(bytes(text), length), 0, length, re2::RE2::ANCHOR_BOTH, nullptr, 0) ? 1 : 0;
}

extern "C" int pf_re2_partial_match(const pf_re2 *re, const void *text, size_t length) {
  if (!re->regex.ok()) return 0;
  return re->regex.Match(re2::StringPiece(bytes(text), length), 0, length, re2::RE2::UNANCHORED, nullptr, 0) ? 1 : 0;
}

extern "C" int pf_re2_search(
  const pf_re2 *re, const void *text, size_t length, int groups, int64_t *starts, int64_t *ends) {
  if (!re->regex.ok() || groups < 0) return 0;
  for (int i = 0; i < groups; i++) starts[i] = ends[i] = -1;
  int wanted = groups;
  if (wanted > kMaxGroups) wanted = kMaxGroups;
  if (wanted > re->regex.NumberOfCapturingGroups() + 1) wanted = re->regex.NumberOfCapturingGroups() + 1;
  const char *base = bytes(text);
  re2::StringPiece found[kMaxGroups];
  re2::StringPiece input(base, length);
  if (!re->regex.Match(input, 0, length, re2::RE2::UNANCHORED, found, wanted)) return 0;
  for (int i = 0; i < wanted; i++) {
    if (found[i].data() == nullptr) continue;
    starts[i] = found[i].data() - base;
    ends[i] = starts[i] + static_cast<int64_t>(found[i].size());
  }
  return 1;
}
