/*
 * test_access.c: If-Match preconditions and bearer-token auth.
 *
 * Every change (train, PUT, PATCH, PUT /state, reset, DELETE) with a stale
 * If-Match is 412 and changes nothing; with the current ETag it goes
 * through. With --token-file, a change without the token or with another
 * is 401 with WWW-Authenticate: Bearer and changes nothing; reads stay
 * open; the right token works.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "k7-Qx2vT9pLm4"

static struct it_daemon d;

static long req(const char *method, const char *path, const char *h1, const char *h2,
		const char *body, struct it_response *r)
{
	const char *headers[] = { h1, h2, NULL };

	if (!h1)
		headers[0] = h2, headers[1] = NULL;
	it_request(&d, method, path, headers, body, body ? strlen(body) : 0, r);
	return r->status;
}

static const struct { const char *method, *path, *body; long status; } changes[] = {
	{ "POST", "/v1/layers/L/train", "{\"input\": [[0.0, 1.0], [3.0, 5.0]]}", 200 },
	{ "PUT", "/v1/layers/L/state", "{\"running_mean\": [0.5, 0.5]}", 200 },
	{ "PATCH", "/v1/layers/L", "{\"eps\": 0.01}", 200 },
	{ "POST", "/v1/layers/L/reset", NULL, 200 },
	{ "DELETE", "/v1/layers/L", NULL, 204 },
};
enum { NCHANGES = sizeof(changes) / sizeof(changes[0]) };

static const char *at(const char *path, const char *name)
{
	static char buf[256];
	const char *l = strstr(path, "/L");

	snprintf(buf, sizeof(buf), "%.*s/%s%s", (int)(l - path), path, name, l + 2);
	return buf;
}

static void test_if_match(void)
{
	struct it_response r;
	char stale[300], current[300];

	req("PUT", "/v1/layers/im", NULL, NULL, "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	snprintf(stale, sizeof(stale), "If-Match: %s", r.etag);
	it_response_finish(&r);
	/* The ETag it had when created matches until something changes. */
	req("POST", "/v1/layers/im/train", stale, NULL, changes[0].body, &r);
	CHECKF(r.status == 200, "train with the current If-Match: %ld %.200s", r.status, r.body);
	it_response_finish(&r);

	for (size_t i = 0; i < NCHANGES; i++) {
		struct it_snapshot before, after;
		char what[512];
		const char *path = at(changes[i].path, "im");

		snprintf(what, sizeof(what), "%s %s with a stale If-Match", changes[i].method, path);
		it_snapshot_take(&d, "im", &before);
		req(changes[i].method, path, stale, NULL, changes[i].body, &r);
		it_check_problem(&r, 412, "precondition_failed", what);
		CHECKF(!strcmp(r.etag, before.etag), "%s: the 412 carries ETag '%s', not the current %s", what,
				r.etag, before.etag);
		it_response_finish(&r);
		it_snapshot_take(&d, "im", &after);
		CHECKF(it_snapshot_equal(&before, &after), "%s changed the layer", what);
		it_snapshot_finish(&after);
		/* And with the current one it goes through. */
		snprintf(current, sizeof(current), "If-Match: %s", before.etag);
		path = at(changes[i].path, "im");
		req(changes[i].method, path, current, NULL, changes[i].body, &r);
		CHECKF(r.status == changes[i].status, "%s %s with the current If-Match: %ld %.200s",
				changes[i].method, path, r.status, r.body);
		if (r.status == 200)
			CHECKF(r.etag[0] && strcmp(r.etag, before.etag), "%s %s: no new ETag", changes[i].method, path);
		it_response_finish(&r);
		it_snapshot_finish(&before);
	}
}

static void test_auth(void)
{
	char token_path[256];
	struct it_response r;
	const char *right = "Authorization: Bearer " TOKEN;
	static const char *const wrong[] = {
		NULL, "Authorization: Bearer not-the-token", "Authorization: Bearer " TOKEN "x",
		"Authorization: Bearer", "Authorization: Basic dXNlcjpwYXNz", "Authorization: " TOKEN,
	};

	if (!CHECK(it_daemon_stop(&d) == 0))
		return;
	CHECK(it_write_file(&d, "token", TOKEN, token_path, sizeof(token_path)) == 0);
	const char *args[] = { "--token-file", token_path, "--sync", "normal", NULL };
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start with --token-file"))
		return;

	req("PUT", "/v1/layers/au", NULL, NULL, "{\"num_features\": 2}", &r);
	it_check_problem(&r, 401, "unauthorized", "PUT without a token");
	CHECKF(!strncmp(r.www_authenticate, "Bearer", 6), "401 WWW-Authenticate '%s'", r.www_authenticate);
	it_response_finish(&r);
	req("GET", "/v1/layers/au", NULL, NULL, NULL, &r);
	CHECKF(r.status == 404, "a PUT refused with 401 created the layer (%ld)", r.status);
	it_response_finish(&r);
	req("PUT", "/v1/layers/au", right, NULL, "{\"num_features\": 2}", &r);
	CHECKF(r.status == 201, "PUT with the token: %ld %.200s", r.status, r.body);
	it_response_finish(&r);

	for (size_t i = 0; i < NCHANGES; i++) {
		const char *path = at(changes[i].path, "au");
		for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
			struct it_snapshot before, after;
			char what[512];

			snprintf(what, sizeof(what), "%s %s with '%s'", changes[i].method, path, wrong[w] ? wrong[w] : "no token");
			it_snapshot_take(&d, "au", &before);
			req(changes[i].method, path, wrong[w], NULL, changes[i].body, &r);
			it_check_problem(&r, 401, "unauthorized", what);
			CHECKF(!strncmp(r.www_authenticate, "Bearer", 6), "%s: WWW-Authenticate '%s'", what, r.www_authenticate);
			it_response_finish(&r);
			it_snapshot_take(&d, "au", &after);
			CHECKF(it_snapshot_equal(&before, &after), "%s changed the layer", what);
			it_snapshot_finish(&before);
			it_snapshot_finish(&after);
			path = at(changes[i].path, "au");
		}
	}
	static const char *const open_reads[] = {
		"/v1/layers", "/v1/layers/au", "/v1/layers/au/state", "/v1/layers/au/history", "/readyz", "/livez", "/metrics",
		"/openapi.json", "/",
	};
	for (size_t i = 0; i < sizeof(open_reads) / sizeof(open_reads[0]); i++) {
		req("GET", open_reads[i], NULL, NULL, NULL, &r);
		CHECKF(r.status == 200, "GET %s without a token: %ld", open_reads[i], r.status);
		it_response_finish(&r);
	}
	for (size_t i = 0; i < NCHANGES; i++) {
		const char *path = at(changes[i].path, "au");
		req(changes[i].method, path, right, NULL, changes[i].body, &r);
		CHECKF(r.status == changes[i].status, "%s %s with the token: %ld %.200s", changes[i].method, path,
				r.status, r.body);
		it_response_finish(&r);
	}
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", NULL };
	void (*const tests[])(void) = { test_if_match, test_auth, NULL };

	return it_run(&d, "http_access", argc, argv, args, tests);
}
