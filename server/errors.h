/*
 * errors.h: how batchnormd turns a negative errno into an HTTP answer.
 *
 * Every failure inside the daemon is a negative errno plus, where a person
 * can act on it, a struct bn_error with a stable code and a detail. The one
 * table in errors.c maps the errno to the HTTP status and to the code used
 * when none was given; responses are RFC 9457 problem details.
 */
#ifndef BND_ERRORS_H
#define BND_ERRORS_H

#include <errno.h>

#include "bn/buf.h"
#include "bn/error.h"

/* Codes the daemon adds to the library's BN_E_* ones. */
#define BND_E_NOT_FOUND          "not_found"
#define BND_E_METHOD_NOT_ALLOWED "method_not_allowed"
#define BND_E_INVALID_NAME       "invalid_name"
#define BND_E_INVALID_QUERY      "invalid_query"
#define BND_E_UNSUPPORTED_MEDIA  "unsupported_media_type"
#define BND_E_UNAUTHORIZED       "unauthorized"
#define BND_E_PRECONDITION       "precondition_failed"
#define BND_E_CONFLICT           "conflict"
#define BND_E_TOO_MANY_LAYERS    "too_many_layers"
#define BND_E_INVALID_STATE      "invalid_state"
#define BND_E_STORE_UNAVAILABLE  "store_unavailable"
#define BND_E_STORE_CORRUPT      "store_corrupt"
#define BND_E_OVER_BUDGET        "over_memory_budget"
#define BND_E_COMMIT_QUEUE_FULL  "commit_queue_full"
#define BND_E_SHUTTING_DOWN      "shutting_down"
#define BND_E_INTERNAL           "internal_error"
#define BND_E_NOT_TRACKING       "not_tracking"
#define BND_E_NO_CALIBRATION     "no_calibration"

/*
 * The daemon's errno vocabulary, beyond the library's (see bn/error.h):
 * ENOENT unknown layer or path, ENOSYS wrong method, EACCES missing token,
 * ESTALE If-Match failed, EEXIST exists with another config, EDQUOT layer
 * cap reached, EMEDIUMTYPE unsupported Content-Type, EIO store failure,
 * EUCLEAN the database is damaged, ENOBUFS the memory budget is in use
 * (retry later), EPERM the layer does not track running stats (calibration,
 * folding), ENODATA the layer has no open calibration.
 */

/* The HTTP status for a negative errno (500 for one the table lacks). */
unsigned bnd_errno_status(int err);

/* The code a problem uses when the caller gave none. */
const char *bnd_errno_code(int err);

/* The reason phrase of an HTTP status ("Unprocessable Content"). */
const char *bnd_status_phrase(unsigned status);

/*
 * Append the problem+json document for status, code and detail to out.
 * Returns out's error state (0, -E2BIG, -ENOMEM).
 */
int bnd_problem_write(struct bn_buf *out, unsigned status, const char *code, const char *detail);

#endif
