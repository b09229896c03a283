/*
 * test_routes.c: the OpenAPI document and the daemon's route table agree.
 *
 *   test_routes OPENAPI.json DASHBOARD-FILE...
 *
 * Fails when a route in bnd_routes has no operation under the same path and
 * method in the document, when the document has an operation the table does
 * not route, when a route that changes state (BND_ROUTE_MUTATES) and the
 * document disagree about the bearer token, or when a route that takes .npy
 * (BND_ROUTE_NPY) has no application/x-npy request body in the document.
 * Paths marked "x-batchnormd-dashboard-file" are served from the embedded
 * dashboard rather than the table: each must name one of the dashboard files
 * given on the command line, and every one of those but index.html (served
 * at /) must be documented.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "http.h"

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("not ok - ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	failures++;
}

/* Lowercase method into out (OpenAPI's operation keys); false when it does not fit. */
static bool lower(const char *method, char *out, size_t size)
{
	size_t i;

	for (i = 0; method[i]; i++) {
		if (i + 1 >= size)
			return false;
		out[i] = (char)tolower((unsigned char)method[i]);
	}
	out[i] = '\0';
	return true;
}

static bool routed(const char *path, const char *op)
{
	char m[16];

	for (size_t i = 0; i < bnd_routes_count; i++)
		if (strcmp(bnd_routes[i].pattern, path) == 0 && lower(bnd_routes[i].method, m, sizeof(m)) &&
				strcmp(m, op) == 0)
			return true;
	return false;
}

static bool has_bearer(json_t *op)
{
	json_t *sec = json_object_get(op, "security");
	size_t i;
	json_t *req;

	json_array_foreach(sec, i, req)
		if (json_object_get(req, "bearerAuth"))
			return true;
	return false;
}

static bool takes_npy(json_t *op)
{
	json_t *content = json_object_get(json_object_get(op, "requestBody"), "content");

	return json_object_get(content, "application/x-npy") != NULL;
}

static bool is_operation(const char *key)
{
	static const char *const ops[] = { "get", "put", "post", "delete", "options", "head", "patch", "trace" };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(key, ops[i]) == 0)
			return true;
	return false;
}

/* Every route is documented, with the token and the .npy body where the table says. */
static void check_table(json_t *paths)
{
	char m[16];

	if (bnd_routes_count == 0)
		fail("the route table is empty");
	for (size_t i = 0; i < bnd_routes_count; i++) {
		const struct bnd_route *r = &bnd_routes[i];
		json_t *op;

		if (!lower(r->method, m, sizeof(m))) {
			fail("route %s %s: method too long", r->method, r->pattern);
			continue;
		}
		op = json_object_get(json_object_get(paths, r->pattern), m);
		if (!json_is_object(op)) {
			fail("route %s %s is not in the OpenAPI document", r->method, r->pattern);
			continue;
		}
		if (((r->flags & BND_ROUTE_MUTATES) != 0) != has_bearer(op))
			fail("route %s %s: the document and the table disagree on the bearer token", r->method, r->pattern);
		if ((r->flags & BND_ROUTE_NPY) && !takes_npy(op))
			fail("route %s %s takes .npy but the document has no application/x-npy body", r->method, r->pattern);
	}
}

static bool listed(const char *base, char **files, int n)
{
	for (int i = 0; i < n; i++) {
		const char *slash = strrchr(files[i], '/');

		if (strcmp(slash ? slash + 1 : files[i], base) == 0)
			return true;
	}
	return false;
}

/* Every documented operation is routed (or is a dashboard file). */
static void check_document(json_t *paths, char **files, int n)
{
	const char *path;
	json_t *item;

	json_object_foreach(paths, path, item) {
		const char *key;
		json_t *op;

		if (json_is_true(json_object_get(item, "x-batchnormd-dashboard-file"))) {
			if (path[0] != '/' || !listed(path + 1, files, n))
				fail("%s is marked as a dashboard file but is not one", path);
			continue;
		}
		json_object_foreach(item, key, op) {
			if (is_operation(key) && !routed(path, key))
				fail("the document has %s %s, which the server does not route", key, path);
		}
	}
	for (int i = 0; i < n; i++) {
		const char *slash = strrchr(files[i], '/');
		const char *base = slash ? slash + 1 : files[i];
		char p[256];

		if (strcmp(base, "index.html") == 0)
			continue;
		snprintf(p, sizeof(p), "/%s", base);
		if (!json_is_true(json_object_get(json_object_get(paths, p), "x-batchnormd-dashboard-file")))
			fail("dashboard file %s is not documented at %s", base, p);
	}
}

int main(int argc, char **argv)
{
	json_error_t jerr;
	json_t *doc, *paths;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OPENAPI.json [DASHBOARD-FILE...]\n", argv[0]);
		return 2;
	}
	doc = json_load_file(argv[1], 0, &jerr);
	if (!doc) {
		printf("not ok - %s:%d: %s\n", argv[1], jerr.line, jerr.text);
		return 1;
	}
	paths = json_object_get(doc, "paths");
	if (!json_is_object(paths)) {
		printf("not ok - %s has no paths object\n", argv[1]);
		json_decref(doc);
		return 1;
	}
	check_table(paths);
	check_document(paths, argv + 2, argc - 2);
	printf("# %zu routes, %zu documented paths, %d failures\n", bnd_routes_count, json_object_size(paths), failures);
	json_decref(doc);
	return failures ? 1 : 0;
}
