/*
 * test_budget.c: the memory budget (--max-memory) and the byte caps on history.
 *
 * The daemon runs with a 32 MiB budget and 10 MiB of history per layer.
 *
 * History: a 65536-channel layer keeps only the newest entries that fit
 * in --history-bytes (each counts 16 bytes per channel plus 64), a narrow
 * one keeps all of its; a page of the wide one asked for 1000 entries is
 * cut by bytes with next_after set, and paging through gives every kept
 * entry exactly once, in order.
 *
 * Budget: three uploads that declare 10 MiB each and send only a little are
 * held open, so their bodies' reservations (exactly their Content-Length
 * plus one, as /metrics shows) leave less than 2 MiB. Then a fourth upload
 * is 503 over_memory_budget with Retry-After before its body is sent; a
 * chunked one is refused as it grows; answers that would not fit (a wide
 * layer's GET and state, a history page, a JSON eval answer, a decoded
 * input beside its body), a wide train step, reset and PATCH are 503 with
 * Retry-After and change nothing; small requests and the same eval with
 * an .npy answer still succeed. The held uploads then finish with 201, an
 * aborted upload gives its reservation back, the reserved gauge returns to
 * 0, its peak never passed the budget, and what was refused succeeds.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUDGET (32u << 20)
#define HISTORY_BYTES (10u << 20)
#define WIDE 65536
#define WIDE_STEPS 12
/* 16 bytes per channel plus 64 per entry: 9 of the wide layer's fit in 10 MiB. */
#define WIDE_KEPT (HISTORY_BYTES / (16 * WIDE + 64))
#define NARROW_STEPS 20
#define HELD 3
#define HELD_BYTES (10u << 20)
#define PAGE_BYTES (16u << 20)

static struct it_daemon d;

/* A value of /metrics (a line "name value"), or -1 when absent. */
static double metric(const char *name)
{
	struct it_response r;
	double v = -1;
	size_t n = strlen(name);

	it_call(&d, "GET", "/metrics", NULL, &r);
	for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			v = strtod(p + n + 1, NULL);
	it_response_finish(&r);
	return v;
}

/* Wait (10 s at most) for the reserved gauge to be want; returns the last value seen. */
static double wait_reserved(double want)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	double v = -1;

	for (int i = 0; i < 500; i++) {
		v = metric("batchnormd_memory_reserved_bytes");
		if (v == want)
			break;
		nanosleep(&tick, NULL);
	}
	return v;
}

/* ---- a raw HTTP/1.1 client: to hold an upload open, and to see Retry-After ---- */

struct raw_answer {
	int status;              /* 0: no answer */
	char retry_after[32];
	char *buf;               /* the whole answer */
	const char *body;
	size_t body_len;
	json_t *json;
};

static void raw_answer_finish(struct raw_answer *a)
{
	json_decref(a->json);
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

static int raw_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d.port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	CHECKF(fd >= 0, "connect: %s", strerror(errno));
	return fd;
}

/* Send all of p; false when the peer is gone. */
static bool send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

		if (k <= 0)
			return false;
		c += k;
		n -= (size_t)k;
	}
	return true;
}

/* Send a request's head: method path, Connection: close, and extra header lines. */
static bool send_head(int fd, const char *method, const char *path, const char *extra)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
		method, path, extra ? extra : "");

	return send_all(fd, head, (size_t)n);
}

/* Read the answer up to the server's close (10 s at most) and parse it. */
static void raw_read(int fd, struct raw_answer *a)
{
	size_t cap = 1 << 16, len = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	const char *end, *h;

	memset(a, 0, sizeof(*a));
	a->buf = malloc(cap);
	while (a->buf && poll(&pfd, 1, 10000) == 1) {
		ssize_t k;

		if (len + 1 == cap) {
			char *b = realloc(a->buf, cap *= 2);

			if (!b)
				break;
			a->buf = b;
		}
		k = recv(fd, a->buf + len, cap - len - 1, 0);
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	if (!a->buf)
		return;
	a->buf[len] = '\0';
	end = strstr(a->buf, "\r\n\r\n");
	if (strncmp(a->buf, "HTTP/1.1 ", 9) != 0 || !end)
		return;
	a->status = (int)strtol(a->buf + 9, NULL, 10);
	for (h = a->buf; (h = strstr(h, "\r\n")) && h < end; h += 2) {
		if (strncasecmp(h + 2, "Retry-After:", 12) == 0) {
			const char *v = h + 14 + strspn(h + 14, " ");

			snprintf(a->retry_after, sizeof(a->retry_after), "%.*s", (int)strcspn(v, "\r"), v);
		}
	}
	a->body = end + 4;
	a->body_len = len - (size_t)(a->body - a->buf);
	a->json = json_loadb(a->body, a->body_len, 0, NULL);
}

/* One whole request over a raw connection. */
static void raw_request(const char *method, const char *path, const char *extra, const void *body,
		size_t len, struct raw_answer *a)
{
	int fd = raw_connect();
	char cl[512];

	memset(a, 0, sizeof(*a));
	if (fd < 0)
		return;
	snprintf(cl, sizeof(cl), "%sContent-Length: %zu\r\n", extra ? extra : "", len);
	if (send_head(fd, method, path, cl) && (!len || send_all(fd, body, len)))
		raw_read(fd, a);
	close(fd);
}

/* Check a refusal for memory: 503 over_memory_budget with Retry-After and a detail. */
static void check_refused(const struct raw_answer *a, const char *what)
{
	const char *code = json_string_value(json_object_get(a->json, "code"));
	const char *detail = json_string_value(json_object_get(a->json, "detail"));

	CHECKF(a->status == 503, "%s: status %d, not 503: %.300s", what, a->status, a->body ? a->body : "");
	CHECKF(a->retry_after[0] && strtol(a->retry_after, NULL, 10) > 0, "%s: no Retry-After (got '%s')",
		what, a->retry_after);
	CHECKF(code && strcmp(code, "over_memory_budget") == 0, "%s: code %s", what, code ? code : "(none)");
	CHECKF(detail && strstr(detail, "--max-memory"), "%s: the detail does not name --max-memory: %.300s",
		what, a->body ? a->body : "(none)");
}

/* ---- layers and their history ---- */

static void *wide_npy(int k, size_t *len)
{
	size_t shape[2] = { 2, WIDE };
	float *x = malloc(2 * WIDE * sizeof(float));
	void *npy;

	for (size_t i = 0; i < 2 * WIDE; i++)
		x[i] = (float)sin((double)(i * 7 + (size_t)k * 13)) * 3.0f + (float)k;
	npy = it_npy_build("<f4", false, shape, 2, x, 2 * WIDE, len);
	free(x);
	return npy;
}

static void train_wide(int k, long want)
{
	const char *h[] = { "Content-Type: application/x-npy", "Accept: application/x-npy", NULL };
	struct it_response r;
	size_t len;
	void *npy = wide_npy(k, &len);

	it_request(&d, "POST", "/v1/layers/wide/train", h, npy, len, &r);
	CHECKF(r.status == want, "wide train step %d: %ld %.200s", k, r.status, r.body);
	it_response_finish(&r);
	free(npy);
}

static void test_history_bytes(void)
{
	struct it_response r;
	int64_t next = 0, expect = WIDE_STEPS - (int64_t)WIDE_KEPT + 1;
	int pages = 0;

	it_call(&d, "PUT", "/v1/layers/wide", "{\"num_features\": 65536}", &r);
	CHECKF(r.status == 201, "PUT wide: %ld", r.status);
	it_response_finish(&r);
	it_call(&d, "PUT", "/v1/layers/narrow", "{\"num_features\": 2}", &r);
	CHECKF(r.status == 201, "PUT narrow: %ld", r.status);
	it_response_finish(&r);
	for (int k = 1; k <= WIDE_STEPS; k++)
		train_wide(k, 200);
	for (int k = 1; k <= NARROW_STEPS; k++) {
		it_call(&d, "POST", "/v1/layers/narrow/train", "{\"input\": [[0.0, 1.0], [2.0, 5.0]]}", &r);
		CHECKF(r.status == 200, "narrow train: %ld", r.status);
		it_response_finish(&r);
	}
	/* The narrow layer's 20 entries fit in 10 MiB and under --history-limit: all kept. */
	it_call(&d, "GET", "/v1/layers/narrow/history?limit=1000", NULL, &r);
	CHECKF(json_array_size(it_get(r.json, "steps", NULL)) == NARROW_STEPS,
		"narrow history: %zu entries, not %d", json_array_size(it_get(r.json, "steps", NULL)), NARROW_STEPS);
	it_response_finish(&r);

	/* The wide one keeps the newest WIDE_KEPT; pages cut by bytes give each once, in order. */
	do {
		char path[128];
		json_t *steps, *na;
		size_t i;

		snprintf(path, sizeof(path), "/v1/layers/wide/history?after=%lld&limit=1000", (long long)next);
		it_call(&d, "GET", path, NULL, &r);
		steps = it_get(r.json, "steps", NULL);
		na = it_get(r.json, "next_after", NULL);
		if (!CHECKF(r.status == 200 && steps, "%s: %ld %.200s", path, r.status, r.body)) {
			it_response_finish(&r);
			return;
		}
		CHECKF(r.len <= PAGE_BYTES + 64, "%s: a page of %zu bytes, over 16 MiB", path, r.len);
		CHECKF(json_array_size(steps) >= 1, "%s: an empty page", path);
		for (i = 0; i < json_array_size(steps); i++) {
			int64_t step = json_integer_value(json_object_get(json_array_get(steps, i), "step"));

			CHECKF(step == expect, "%s: step %lld where %lld was due", path, (long long)step,
				(long long)expect);
			expect = step + 1;
		}
		if (pages == 0)
			CHECKF(json_is_integer(na) && json_array_size(steps) < WIDE_KEPT,
				"the first page of 1000 of the wide layer was not cut by bytes: %zu entries, "
				"next_after %s", json_array_size(steps), json_is_integer(na) ? "set" : "null");
		next = json_is_integer(na) ? json_integer_value(na) : -1;
		if (next >= 0)
			CHECKF(i > 0 && next == expect - 1, "next_after %lld is not the page's last step",
				(long long)next);
		pages++;
		it_response_finish(&r);
	} while (next >= 0 && pages < 100);
	CHECKF(expect == WIDE_STEPS + 1, "the pages ended before step %d (at %lld)", WIDE_STEPS,
		(long long)expect);
	CHECKF(pages >= 2, "the wide history came in %d page(s)", pages);
}

/* ---- the budget ---- */

/* The config body of the held uploads: valid JSON, mostly spaces. */
static const char held_config[] = "{\"num_features\": 2}";

/* Open an upload declaring HELD_BYTES and send only its start. */
static int hold_upload(int i)
{
	char path[64], extra[128], start[4096];
	int fd = raw_connect();

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "/v1/layers/held%d", i);
	snprintf(extra, sizeof(extra), "Content-Type: application/json\r\nContent-Length: %u\r\n", HELD_BYTES);
	memcpy(start, held_config, sizeof(held_config) - 1);
	memset(start + sizeof(held_config) - 1, ' ', sizeof(start) - sizeof(held_config) + 1);
	CHECK(send_head(fd, "PUT", path, extra) && send_all(fd, start, sizeof(start)));
	return fd;
}

/* Send the rest of a held upload and check its 201. */
static void finish_upload(int fd, int i)
{
	size_t left = HELD_BYTES - 4096;
	char *spaces = malloc(left);
	struct raw_answer a;

	memset(spaces, ' ', left);
	CHECKF(send_all(fd, spaces, left), "held upload %d: the rest could not be sent", i);
	raw_read(fd, &a);
	CHECKF(a.status == 201, "held upload %d finished with %d, not 201: %.200s", i, a.status,
		a.body ? a.body : "");
	raw_answer_finish(&a);
	free(spaces);
	close(fd);
}

/* A chunked upload past what is left: refused as it grows. */
static void chunked_refused(void)
{
	int fd = raw_connect();
	char chunk[64 * 1024 + 16];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct raw_answer a;
	int n = snprintf(chunk, sizeof(chunk), "%x\r\n", 64 * 1024);

	if (fd < 0)
		return;
	memset(chunk + n, ' ', 64 * 1024);
	memcpy(chunk + n + 64 * 1024, "\r\n", 2);
	send_head(fd, "PUT", "/v1/layers/chunky",
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
	send_all(fd, "13\r\n{\"num_features\": 2}\r\n", 25);
	/* 4 MiB in 64 KiB chunks, stopping as soon as the answer shows. */
	for (int i = 0; i < 64 && poll(&pfd, 1, 20) == 0; i++)
		if (!send_all(fd, chunk, (size_t)n + 64 * 1024 + 2))
			break;
	send_all(fd, "0\r\n\r\n", 5);
	raw_read(fd, &a);
	check_refused(&a, "a chunked upload past the budget");
	raw_answer_finish(&a);
	close(fd);
}

/* An .npy input of (rows, 2) for the narrow layer. */
static void *narrow_npy(size_t rows, size_t *len)
{
	size_t shape[2] = { rows, 2 };
	float *x = malloc(rows * 2 * sizeof(float));
	void *npy;

	for (size_t i = 0; i < rows * 2; i++)
		x[i] = (float)(i % 1000) * 0.001f;
	npy = it_npy_build("<f4", false, shape, 2, x, rows * 2, len);
	free(x);
	return npy;
}

/* Requests whose answers (or the step's scratch) would not fit now. */
static void answers_refused(const void *npy_in, size_t npy_len)
{
	static const char *const gets[] = { "/v1/layers/wide", "/v1/layers/wide/state",
		"/v1/layers/wide/history?limit=1000" };
	struct raw_answer a;
	size_t wlen;
	void *wnpy = wide_npy(99, &wlen);

	for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		raw_request("GET", gets[i], NULL, NULL, 0, &a);
		check_refused(&a, gets[i]);
		raw_answer_finish(&a);
	}
	raw_request("POST", "/v1/layers/wide/train", "Content-Type: application/x-npy\r\n"
		"Accept: application/x-npy\r\n", wnpy, wlen, &a);
	check_refused(&a, "a train step of the wide layer");
	raw_answer_finish(&a);
	/* Changes answered with the wide layer: refused before they are made. */
	raw_request("POST", "/v1/layers/wide/reset", NULL, NULL, 0, &a);
	check_refused(&a, "a reset of the wide layer");
	raw_answer_finish(&a);
	raw_request("PATCH", "/v1/layers/wide", "Content-Type: application/json\r\n", "{\"eps\": 0.5}", 12, &a);
	check_refused(&a, "a PATCH of the wide layer");
	raw_answer_finish(&a);
	/* The same .npy input: its JSON answer does not fit, its .npy answer does. */
	raw_request("POST", "/v1/layers/narrow/eval", "Content-Type: application/x-npy\r\n", npy_in, npy_len, &a);
	check_refused(&a, "an eval with a large JSON answer");
	raw_answer_finish(&a);
	raw_request("POST", "/v1/layers/narrow/eval", "Content-Type: application/x-npy\r\n"
		"Accept: application/x-npy\r\n", npy_in, npy_len, &a);
	CHECKF(a.status == 200, "the eval with an .npy answer: %d %.200s", a.status, a.body ? a.body : "");
	raw_answer_finish(&a);
	free(wnpy);
	/* 1.3 MB in and out: the body and its decoded copy do not fit side by side. */
	wnpy = narrow_npy(160000, &wlen);
	raw_request("POST", "/v1/layers/narrow/eval", "Content-Type: application/x-npy\r\n"
		"Accept: application/x-npy\r\n", wnpy, wlen, &a);
	check_refused(&a, "an eval whose decoded input does not fit beside its body");
	raw_answer_finish(&a);
	free(wnpy);
}

static void test_budget(void)
{
	const double held = (double)HELD * (HELD_BYTES + 1);
	struct it_snapshot before, after;
	struct it_response r;
	struct raw_answer a;
	int fds[HELD];
	size_t npy_len;
	void *npy = narrow_npy(76800, &npy_len);
	double v;

	CHECK(metric("batchnormd_memory_budget_bytes") == BUDGET);
	it_snapshot_take(&d, "wide", &before);
	for (int i = 0; i < HELD; i++)
		fds[i] = hold_upload(i);
	v = wait_reserved(held);
	CHECKF(v == held, "with %d uploads of %u bytes open, %.0f bytes are reserved, not %.0f", HELD,
		HELD_BYTES, v, held);

	/* A fourth is refused from its head alone: no body is sent. */
	{
		int fd = raw_connect();
		char extra[128];

		snprintf(extra, sizeof(extra), "Content-Type: application/json\r\nContent-Length: %u\r\n", HELD_BYTES);
		send_head(fd, "PUT", "/v1/layers/fourth", extra);
		raw_read(fd, &a);
		check_refused(&a, "a fourth upload of 10 MiB");
		raw_answer_finish(&a);
		close(fd);
	}
	chunked_refused();
	answers_refused(npy, npy_len);

	/* Small requests are still served. */
	it_call(&d, "GET", "/livez", NULL, &r);
	CHECKF(r.status == 200, "/livez while the budget is taken: %ld", r.status);
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/narrow/eval", "{\"input\": [[0.0, 1.0], [2.0, 5.0]]}", &r);
	CHECKF(r.status == 200, "a small eval while the budget is taken: %ld", r.status);
	it_response_finish(&r);
	CHECK(metric("batchnormd_memory_budget_refusals_total") >= 10);

	for (int i = 0; i < HELD; i++)
		if (fds[i] >= 0)
			finish_upload(fds[i], i);
	/* An aborted upload gives back what it reserved. */
	{
		int fd = hold_upload(HELD);

		struct linger rst = { 1, 0 };

		v = wait_reserved(HELD_BYTES + 1);
		CHECKF(v == HELD_BYTES + 1, "an open upload reserved %.0f bytes", v);
		/* A reset, which the server sees at once (a plain close may wait for its idle timeout). */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		close(fd);
	}
	v = wait_reserved(0);
	CHECKF(v == 0, "after every request completed, %.0f bytes are still reserved", v);
	v = metric("batchnormd_memory_reserved_peak_bytes");
	CHECKF(v >= held && v <= BUDGET, "the peak reserved is %.0f, not between %.0f and the budget", v, held);

	/* What was refused changed nothing, and goes through now. */
	it_snapshot_take(&d, "wide", &after);
	CHECK(it_snapshot_equal(&before, &after));
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
	it_call(&d, "GET", "/v1/layers/fourth", NULL, &r);
	CHECKF(r.status == 404, "the refused upload created its layer: %ld", r.status);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/wide/history?limit=1000", NULL, &r);
	CHECKF(r.status == 200, "a history page once the budget is free: %ld", r.status);
	it_response_finish(&r);
	train_wide(100, 200);
	raw_request("POST", "/v1/layers/narrow/eval", "Content-Type: application/x-npy\r\n", npy, npy_len, &a);
	CHECKF(a.status == 200, "the eval with a JSON answer once the budget is free: %d", a.status);
	raw_answer_finish(&a);
	free(npy);
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--max-memory", "33554432", "--history-bytes", "10485760",
		"--sync", "normal", NULL };
	static void (*const tests[])(void) = { test_history_bytes, test_budget, NULL };

	return it_run(&d, "budget", argc, argv, args, tests);
}
