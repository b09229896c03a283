/*
 * http_util.c: what handlers share: route matching, problems, headers,
 * If-Match (http.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "budget.h"
#include "errors.h"
#include "http.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode raw[0..n) into out[0..cap) (no NUL added). Returns the
 * decoded length, or -1 when it does not fit. A '%' without two hex
 * digits after it stays a '%'.
 */
static long decode(const char *raw, size_t n, char *out, size_t cap)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		char c = raw[i];

		if (c == '%' && i + 2 < n && hex_digit(raw[i + 1]) >= 0 && hex_digit(raw[i + 2]) >= 0) {
			c = (char)(hex_digit(raw[i + 1]) * 16 + hex_digit(raw[i + 2]));
			i += 2;
		}
		if (len == cap)
			return -1;
		out[len++] = c;
	}
	return (long)len;
}

/* Whether the raw segment decodes to exactly lit[0..m). */
static bool segment_is(const char *raw, size_t n, const char *lit, size_t m)
{
	char buf[64];
	long len = decode(raw, n, buf, sizeof(buf));

	return len >= 0 && (size_t)len == m && memcmp(buf, lit, m) == 0;
}

/*
 * Match a raw path (as sent, without the query) against one pattern,
 * segment by segment: a literal segment must decode to the pattern's, and
 * {name} takes one raw segment whatever it holds, so a %2F inside it is
 * part of it and never a separator. Once the pattern has reached {name},
 * that segment's place goes to *name and *name_len, even when a later
 * segment does not match.
 */
static bool pattern_match(const char *pattern, const char *path, const char **name, size_t *name_len)
{
	if (*pattern != '/' || *path != '/')
		return false;
	for (;;) {
		size_t pn = strcspn(++pattern, "/"), sn = strcspn(++path, "/");

		if (pn == 6 && strncmp(pattern, "{name}", 6) == 0) {
			*name = path;
			*name_len = sn;
		} else if (!segment_is(path, sn, pattern, pn)) {
			return false;
		}
		pattern += pn;
		path += sn;
		if (!*pattern || !*path)
			return !*pattern && !*path;
	}
}

/* Decode a raw {name} segment and judge it: every decoded byte must be in the grammar. */
static bool name_decode(const char *raw, size_t n, char name[BND_NAME_MAX + 1])
{
	long len = decode(raw, n, name, BND_NAME_MAX);

	if (len < 0) {
		name[0] = '\0';
		return false;
	}
	name[len] = '\0';
	/* A %00 would end the C string early and make "a%00xyz" look like "a". */
	return strlen(name) == (size_t)len && bnd_name_valid(name);
}

int bnd_route_match(const char *method, const char *path, char name[BND_NAME_MAX + 1],
		char *allow, size_t allow_size)
{
	const char *seg = NULL;
	size_t seg_len = 0, used = 0;
	bool path_known = false;
	int found = -1;

	/* A HEAD is a GET without the body, which libmicrohttpd drops by itself. */
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	allow[0] = '\0';
	name[0] = '\0';
	for (size_t i = 0; i < bnd_routes_count; i++) {
		const struct bnd_route *r = &bnd_routes[i];

		if (!pattern_match(r->pattern, path, &seg, &seg_len))
			continue;
		if (strcmp(r->method, method) == 0) {
			if (found < 0)
				found = (int)i;
			continue;
		}
		path_known = true;
		used += (size_t)snprintf(allow + used, used < allow_size ? allow_size - used : 0, "%s%s%s",
			used ? ", " : "", r->method, strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
	}
	/* A name is judged before anything else, on every method and under every sub-path. */
	if (seg && !name_decode(seg, seg_len, name))
		return -EBADMSG;
	if (found >= 0)
		return found;
	name[0] = '\0';
	return path_known ? -ENOSYS : -ENOENT;
}

int bnd_fail(struct bnd_response *res, int err, const char *code, const char *fmt, ...)
{
	char detail[BN_ERROR_DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	res->status = bnd_errno_status(err);
	res->content_type = "application/problem+json";
	res->file = NULL;
	bn_buf_finish(&res->body);
	bnd_problem_write(&res->body, res->status, code ? code : bnd_errno_code(err), detail);
	return err;
}

int bnd_fail_bn(struct bnd_response *res, int err, const struct bn_error *e)
{
	return bnd_fail(res, err, e->code, "%s", e->detail);
}

void bnd_json(struct bnd_response *res, unsigned status)
{
	res->status = status;
	res->content_type = "application/json";
}

const char *bnd_header(const struct bnd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *bnd_query(const struct bnd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int bnd_reserve(struct bnd_request *req, struct bnd_response *res, size_t n, const char *what)
{
	int rc = bnd_budget_reserve(n);

	if (rc == -E2BIG)
		return bnd_fail(res, rc, BN_E_TOO_LARGE, "%s needs %zu bytes, more than the whole memory "
			"budget of %zu bytes (--max-memory): send less, or ask for a smaller answer",
			what, n, bnd_budget_limit());
	if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "%s needs %zu bytes and the memory budget of %zu bytes "
			"(--max-memory) is in use by other requests (%zu reserved); nothing was changed: "
			"retry after Retry-After seconds", what, n, bnd_budget_limit(), bnd_budget_reserved());
		res->retry_after = 1;
		return rc;
	}
	req->reserved += n;
	return 0;
}

void bnd_unreserve(struct bnd_request *req, size_t n)
{
	if (n > req->reserved)
		n = req->reserved;
	bnd_budget_release(n);
	req->reserved -= n;
}

int bnd_reserve_answer(struct bnd_request *req, struct bnd_response *res, size_t n)
{
	int rc = bnd_reserve(req, res, n, "the answer");

	if (rc == 0)
		bn_buf_reserve(&res->body, n); /* a failure shows again as the answer is written */
	return rc;
}

bool bnd_etag_listed(const char *list, const char *etag)
{
	size_t n = strlen(etag);

	for (const char *p = list; *p;) {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, ",");
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if ((len == 1 && p[0] == '*') || (len == n && strncmp(p, etag, n) == 0))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

int bnd_check_if_match(const struct bnd_request *req, const char *etag, struct bnd_response *res)
{
	const char *want = bnd_header(req, "If-Match");

	if (!want || bnd_etag_listed(want, etag))
		return 0;
	return bnd_fail(res, -ESTALE, BND_E_PRECONDITION,
		"If-Match %s does not match the layer's current ETag %s", want, etag);
}
