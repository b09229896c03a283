/*
 * errors.c: the errno -> HTTP status table and the problem+json writer.
 */
#include <stddef.h>

#include "errors.h"
#include "bn/json.h"

/* errno, HTTP status, default code: the only place a status is chosen for an error. */
#define BND_ERRNO_TABLE(X)                                  \
	X(EBADMSG,     400, BN_E_INVALID_JSON)              \
	X(EACCES,      401, BND_E_UNAUTHORIZED)             \
	X(ENOENT,      404, BND_E_NOT_FOUND)                \
	X(ENODATA,     404, BND_E_NO_CALIBRATION)           \
	X(ENOSYS,      405, BND_E_METHOD_NOT_ALLOWED)       \
	X(EEXIST,      409, BND_E_CONFLICT)                 \
	X(EDQUOT,      409, BND_E_TOO_MANY_LAYERS)          \
	X(EPERM,       409, BND_E_NOT_TRACKING)             \
	X(ESTALE,      412, BND_E_PRECONDITION)             \
	X(E2BIG,       413, BN_E_TOO_LARGE)                 \
	X(EMEDIUMTYPE, 415, BND_E_UNSUPPORTED_MEDIA)        \
	X(EINVAL,      422, BND_E_INVALID_STATE)            \
	X(ENOTSUP,     422, BN_E_UNSUPPORTED_DTYPE)         \
	X(ERANGE,      422, BN_E_NON_FINITE_OUTPUT)         \
	X(EOVERFLOW,   422, BND_E_INVALID_STATE)            \
	X(ENOMEM,      500, BN_E_NO_MEMORY)                 \
	X(EIO,         503, BND_E_STORE_UNAVAILABLE)        \
	X(EUCLEAN,     503, BND_E_STORE_CORRUPT)            \
	X(ENOBUFS,     503, BND_E_OVER_BUDGET)              \
	X(EAGAIN,      503, BND_E_COMMIT_QUEUE_FULL)        \
	X(ECANCELED,   503, BND_E_STORE_UNAVAILABLE)        \
	X(ESHUTDOWN,   503, BND_E_SHUTTING_DOWN)

struct errno_row {
	int err;
	unsigned status;
	const char *code;
};

#define ROW(e, s, c) { e, s, c },
static const struct errno_row errno_rows[] = { BND_ERRNO_TABLE(ROW) };
#undef ROW

static const struct errno_row *find_row(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(errno_rows) / sizeof(errno_rows[0]); i++)
		if (errno_rows[i].err == err)
			return &errno_rows[i];
	return NULL;
}

unsigned bnd_errno_status(int err)
{
	const struct errno_row *row = find_row(err);

	return row ? row->status : 500;
}

const char *bnd_errno_code(int err)
{
	const struct errno_row *row = find_row(err);

	return row ? row->code : BND_E_INTERNAL;
}

const char *bnd_status_phrase(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Unknown";
	}
}

int bnd_problem_write(struct bn_buf *out, unsigned status, const char *code, const char *detail)
{
	bn_buf_puts(out, "{\"type\": \"about:blank\", \"title\": ");
	bn_json_string_write(out, bnd_status_phrase(status));
	bn_buf_printf(out, ", \"status\": %u, \"detail\": ", status);
	bn_json_string_write(out, detail);
	bn_buf_puts(out, ", \"code\": ");
	bn_json_string_write(out, code);
	bn_buf_puts(out, "}\n");
	return out->err;
}
