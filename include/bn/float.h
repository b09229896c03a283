/*
 * bn/float.h: float32 to text and back, exactly and independent of locale.
 *
 * Formatting gives the shortest decimal that reads back as the same float32,
 * spelled as Python's repr spells a float ("1.0", "-0.99998", "1e-05",
 * "3.4028235e+38"), so that what a client sent as x.tolist() comes back
 * looking the same. Parsing takes the JSON number grammar only and rounds
 * correctly to float32.
 */
#ifndef BN_FLOAT_H
#define BN_FLOAT_H

#include <stdbool.h>
#include <stddef.h>

#include "bn/error.h"

/* Enough for any float32 in the format above, with its NUL. */
#define BN_FLOAT_STR_MAX 24

/*
 * Write the shortest round-tripping text of a finite v into out, NUL-terminated.
 * Returns its length. NaN and infinities are the caller's to refuse first;
 * they are written as "NaN", "Infinity", "-Infinity" (not JSON).
 */
size_t bn_float_format(float v, char out[BN_FLOAT_STR_MAX]);

/*
 * Write v[0..n) as bn_float_format does, separated by ", " (and preceded by
 * one unless first), into out, which must hold n * BN_FLOAT_LIST_ROOM bytes;
 * returns the end of what was written (not NUL-terminated). For a writer
 * that reserves room for a run of values once rather than once per value.
 */
#define BN_FLOAT_LIST_ROOM (BN_FLOAT_STR_MAX + 2)
char *bn_float_format_list(char *out, const float *v, size_t n, bool first);

/*
 * Parse exactly s[0..len) as a JSON number into a correctly rounded float32.
 * -EBADMSG (BN_E_INVALID_JSON) when it is not a JSON number; -EINVAL
 * (BN_E_OUT_OF_RANGE, "value 1e39 is beyond float32") when it rounds to
 * infinity. Values that underflow become zero or subnormal, as strtof does.
 * *ret is written only on success.
 */
int bn_float_parse(const char *s, size_t len, float *ret, struct bn_error *err);

/*
 * Parse the longest JSON number at the start of s[0..len), in one pass, into
 * a correctly rounded float32 (the same value bn_float_parse gives for that
 * text) and its length in *ret_used; what follows it is the caller's to
 * judge ("1.5]" reads 1.5 and uses 3 bytes, "1." reads 1 and uses 1).
 * -EBADMSG when s does not start with a JSON number, -EINVAL when it is
 * beyond float32. *ret and *ret_used are written only on success.
 */
int bn_float_parse_prefix(const char *s, size_t len, float *ret, size_t *ret_used,
		struct bn_error *err);

/*
 * Parse a run of JSON numbers separated by ", " (as json.dumps writes them)
 * at s[0..len) into out, at most room of them, each as bn_float_parse_prefix
 * reads it. Stops before anything else: another separator, a number beyond
 * float32 or one that runs on into more number bytes ("1.e5"), the end.
 * Returns how many it read and in *ret_used the bytes up to the end of the
 * last one (0 and 0 when none); what stopped it is the caller's to judge.
 */
size_t bn_float_parse_run(const char *s, size_t len, float *out, size_t room, size_t *ret_used);

#endif
