/*
 * bn/error.h: how libbatchnorm says what went wrong.
 *
 * Every fallible function returns 0 or a negative errno and, when given a
 * struct bn_error, fills it with a stable machine-readable code and a detail
 * a person can act on ("input[1][0][2]: expected a number, got a string").
 * The errno says what kind of failure it was, and so which HTTP status the
 * server answers with:
 *
 *   -EBADMSG  the bytes do not parse (bad JSON, a bad .npy header)      400
 *   -EINVAL   parses, but is not a valid input or config                  422
 *   -ENOTSUP  a valid .npy of a dtype or order we do not take             422
 *   -ERANGE   the result would not be finite in float32                   422
 *   -E2BIG    over a configured cap (elements, bytes)                     413
 *   -ENOMEM   out of memory                                               500
 */
#ifndef BN_ERROR_H
#define BN_ERROR_H

#include <stddef.h>

#define BN_ERROR_DETAIL_MAX 256

/* The codes libbatchnorm uses; clients switch on them, so they never change. */
#define BN_E_INVALID_JSON      "invalid_json"       /* -EBADMSG */
#define BN_E_INVALID_NPY       "invalid_npy"        /* -EBADMSG: bad magic, header, truncated */
#define BN_E_UNSUPPORTED_DTYPE "unsupported_dtype"  /* -ENOTSUP: not <f4, or Fortran order */
#define BN_E_MISSING_INPUT     "missing_input"      /* -EINVAL: no "input" key */
#define BN_E_UNKNOWN_KEY       "unknown_key"        /* -EINVAL */
#define BN_E_WRONG_TYPE        "wrong_type"         /* -EINVAL: a string, null, object... where a number or array goes */
#define BN_E_RAGGED            "ragged_array"       /* -EINVAL */
#define BN_E_NOT_FINITE        "not_finite"         /* -EINVAL: NaN or infinity in the input */
#define BN_E_OUT_OF_RANGE      "out_of_range"       /* -EINVAL: a number beyond float32 */
#define BN_E_BAD_RANK          "bad_rank"           /* -EINVAL: rank outside 2..5 */
#define BN_E_EMPTY_DIMENSION   "empty_dimension"    /* -EINVAL */
#define BN_E_SHAPE_MISMATCH    "shape_mismatch"     /* -EINVAL: shape and data disagree */
#define BN_E_TOO_LARGE         "too_large"          /* -E2BIG */
#define BN_E_WRONG_CHANNELS    "wrong_channels"     /* -EINVAL */
#define BN_E_TOO_FEW_VALUES    "too_few_values"     /* -EINVAL: one value per channel when training */
#define BN_E_NON_FINITE_OUTPUT "non_finite_output"  /* -ERANGE */
#define BN_E_INVALID_CONFIG    "invalid_config"     /* -EINVAL */
#define BN_E_INVALID_STATS     "invalid_stats"      /* -EINVAL: a count, mean or var that is not a valid summary */
#define BN_E_NO_MEMORY         "out_of_memory"      /* -ENOMEM */

struct bn_error {
	const char *code;                 /* one of BN_E_*, static storage */
	char detail[BN_ERROR_DETAIL_MAX]; /* for people, NUL-terminated */
};

/*
 * Fill err (which may be NULL) with code and a printf-formatted detail,
 * truncated to fit. Returns nothing: callers return their errno themselves.
 */
void bn_error_set(struct bn_error *err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
