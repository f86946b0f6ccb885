// C shim over Google's RE2 (Debian's libre2-dev). Swift imports this module as `CRE2`.
// Only our own declarations are exported: <re2/re2.h> and the C++ standard library stay inside
// pf_re2.cc, so Swift never sees a C++ type.
//
// A compiled `pf_re2` is immutable: matching functions take it `const` and may be called from any
// number of threads at once (RE2 is thread-safe for matching). Release it once with pf_re2_free.
// Texts are byte ranges (pointer + length, no NUL needed); offsets are byte offsets into them.
#ifndef PILOTFISH_CRE2_H
#define PILOTFISH_CRE2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_re2 pf_re2;

/// Compiles `pattern` (UTF-8, RE2 syntax; it may contain NUL bytes) with UTF-8 matching and without
/// logging anything to stderr. `max_mem` bounds the memory of the compiled program and of its DFA
/// caches (0 keeps RE2's default of 8 MiB); a pattern that needs more fails to compile.
/// Always returns an object (NULL only when out of memory): check pf_re2_ok, read pf_re2_error, and
/// free it with pf_re2_free either way.
pf_re2 *pf_re2_compile(const void *pattern, size_t length, int64_t max_mem);

void pf_re2_free(pf_re2 *re);

/// 1 when the pattern compiled, 0 when it did not (see pf_re2_error).
int pf_re2_ok(const pf_re2 *re);

/// RE2's text for why the pattern did not compile, e.g. "invalid perl operator: (?=", followed by
/// the offending fragment where RE2 names one; "" when it compiled. Owned by `re`.
const char *pf_re2_error(const pf_re2 *re);

/// RE2's measure of the compiled program's size (its cost per input byte); -1 when it did not compile.
int pf_re2_program_size(const pf_re2 *re);

/// Number of capturing groups (not counting the whole match); -1 when it did not compile.
int pf_re2_capture_count(const pf_re2 *re);

/// 1 when the whole of `text` matches (RE2::FullMatch), else 0.
int pf_re2_full_match(const pf_re2 *re, const void *text, size_t length);

/// 1 when some part of `text` matches (RE2::PartialMatch), else 0.
int pf_re2_partial_match(const pf_re2 *re, const void *text, size_t length);

/// Finds the leftmost match in `text` (unanchored, as RE2::PartialMatch) and writes the byte ranges of
/// group 0 (the whole match) up to group `groups - 1` into `starts`/`ends` (arrays of `groups`
/// elements). A group that took no part in the match gets -1 in both. Returns 1 on a match, 0
/// otherwise (the arrays are then left unspecified). `groups` may exceed the pattern's group count + 1;
/// the extra elements get -1. At most 64 groups are reported.
int pf_re2_search(
  const pf_re2 *re, const void *text, size_t length, int groups, int64_t *starts, int64_t *ends);

#ifdef __cplusplus
}
#endif

#endif
