/*
 * test_hostile.c: clients that try to hold the daemon, or to reach a layer
 * by another name.
 *
 * - Slow clients (raw sockets, each from a chosen 127.x.y.z: the whole of
 *   127/8 is loopback on Linux). 1000 connections from 127.0.0.2 dripping a
 *   request line, one byte every 2 s, must not keep a client on 127.0.0.1
 *   from being answered, and the per-address cap (a quarter of the 1000
 *   connections) leaves at most 250 of them open. 1000 spread over 40
 *   addresses neither, and near the limit the oldest are shed so at most
 *   900 stay. With a request timeout of 2 s, a request whose headers or body
 *   drip is cut within a few seconds, while quick requests on one
 *   kept-alive connection for longer than that are all answered. Under
 *   an open-file limit of 300 the daemon raises its soft limit to that,
 *   lowers its connection limit to fit, and a flood of 300 still leaves
 *   room.
 * - A chunked body over --max-body-bytes is a 413 problem, like one with a
 *   Content-Length, and /metrics counts it; the layer is unchanged.
 * - A name is judged as sent: escapes that decode outside the name grammar
 *   (%00, %2F, %20, %2E%2E, ...) are 400 invalid_name on every layer route,
 *   whatever the method or sub-path, and layer "a" stays as it was; %61
 *   is "a".
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY 65536
#define ASK_MS 5000      /* how long a normal client keeps asking during a flood */
#define ANSWER_MS 5000   /* how long one of its asks may take */
#define NOFILE 300       /* the open-file limit of the last daemon */

static struct it_daemon d;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking TCP connection to the daemon from address src, or -1. */
static int connect_from(const char *src, long timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pollfd p;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	sa.sin_port = htons((uint16_t)d.port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (errno != EINPROGRESS || poll(&p, 1, (int)timeout_ms) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static bool send_all(int fd, const char *s, size_t n)
{
	return send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n;
}

/* Whether the daemon has closed fd (end of stream, reset or hang-up); does not wait. */
static bool closed_by_peer(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char c;

	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLERR | POLLRDHUP))
		return true;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/*
 * Read one answer (headers and a Content-Length body) within timeout_ms.
 * Returns its status, or 0 when none came.
 */
static int read_answer(int fd, long timeout_ms, char *buf, size_t size)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t len = 0;

	buf[0] = '\0';
	while (len + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *end = strstr(buf, "\r\n\r\n"), *cl = strstr(buf, "Content-Length: ");
		long left = (long)(deadline - now_ms());

		if (end && cl && cl < end && len >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
			break;
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return 0;
		ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	if (strncmp(buf, "HTTP/1.1 ", 9) != 0)
		return 0;
	return (int)strtol(buf + 9, NULL, 10);
}

/* A normal client: GET /livez on a new connection from 127.0.0.1. The status, or 0. */
static int ask(void)
{
	static const char req[] = "GET /livez HTTP/1.1\r\nHost: it\r\nConnection: close\r\n\r\n";
	char buf[1024];
	int fd = connect_from("127.0.0.1", ANSWER_MS), status = 0;

	if (fd < 0)
		return 0;
	if (send_all(fd, req, sizeof(req) - 1))
		status = read_answer(fd, ANSWER_MS, buf, sizeof(buf));
	close(fd);
	return status;
}

/* Slow clients: each sends the next byte of a request line that never ends. */
struct crowd {
	int *fd;
	size_t n, sent;
};

static const char drip_text[] = "GET /livez?slow=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void crowd_drip(struct crowd *c)
{
	char byte = drip_text[c->sent++ % (sizeof(drip_text) - 1)];

	for (size_t i = 0; i < c->n; i++)
		if (c->fd[i] >= 0 && !send_all(c->fd[i], &byte, 1)) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
}

/* Close the connections the daemon closed; returns how many are left open. */
static size_t crowd_sweep(struct crowd *c)
{
	size_t open = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (c->fd[i] >= 0 && closed_by_peer(c->fd[i])) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
		open += c->fd[i] >= 0;
	}
	return open;
}

static void crowd_close(struct crowd *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	free(c->fd);
	c->fd = NULL;
}

/*
 * n slow connections from srcs[] in turn drip a request line, while a
 * client on 127.0.0.1 asks for /livez for ASK_MS: every ask must be
 * answered 200 within ANSWER_MS. Returns how many of the slow connections
 * the daemon left open.
 */
static size_t flood(const char *what, const char *const srcs[], size_t nsrc, size_t n)
{
	struct crowd c = { .fd = calloc(n, sizeof(int)), .n = n };
	size_t failed = 0, open;
	int asked = 0, answered = 0;
	int64_t t, slowest = 0, next_drip, end;

	if (!CHECK(c.fd))
		return 0;
	for (size_t i = 0; i < n; i++)
		failed += (c.fd[i] = connect_from(srcs[i % nsrc], 2000)) < 0;
	CHECKF(failed == 0, "%s: %zu of %zu slow connections could not connect", what, failed, n);
	crowd_drip(&c);
	/* Let the daemon take them all in (or turn them away) before the first ask. */
	it_sleep_ms(1000);
	crowd_sweep(&c);
	next_drip = now_ms() + 2000;
	for (end = now_ms() + ASK_MS; now_ms() < end; it_sleep_ms(100)) {
		if (now_ms() >= next_drip) {
			crowd_drip(&c);
			next_drip = now_ms() + 2000;
		}
		t = now_ms();
		answered += ask() == 200;
		asked++;
		slowest = now_ms() - t > slowest ? now_ms() - t : slowest;
	}
	open = crowd_sweep(&c);
	printf("%s: %zu slow connections, %zu left open; %d of %d asks from 127.0.0.1 answered, "
		"the slowest after %lld ms\n", what, n, open, answered, asked, (long long)slowest);
	CHECKF(asked >= 5 && answered == asked, "%s: only %d of %d asks from 127.0.0.1 were answered within %d ms",
		what, answered, asked, ANSWER_MS);
	crowd_close(&c);
	/* Give the daemon time to see them all go before the next flood. */
	it_sleep_ms(1000);
	return open;
}

static void test_flood_one_address(void)
{
	const char *const src[] = { "127.0.0.2" };
	size_t open = flood("1000 slow from 127.0.0.2", src, 1, 1000);

	CHECKF(open <= 250, "the per-address cap (a quarter of 1000) left %zu of 127.0.0.2's connections open", open);
}

static void test_flood_spread(void)
{
	char names[40][16];
	const char *srcs[40];

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "127.0.0.%d", 10 + i);
		srcs[i] = names[i];
	}
	size_t open = flood("1000 slow from 40 addresses", srcs, 40, 1000);
	CHECKF(open <= 900, "near the limit the oldest should be shed, keeping a tenth free; %zu of 1000 stayed", open);
}

/* With BATCHNORMD_REQUEST_TIMEOUT=2: dripping headers or a dripping body are cut; quick requests are not. */
static void test_deadline(void)
{
	static const char body_head[] = "POST /v1/layers/dl/eval HTTP/1.1\r\nHost: it\r\n"
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"input\": ";
	static const char head_head[] = "GET /livez HTTP/1.1\r\nHost: it\r\nX-Slow: ";
	static const char livez[] = "GET /livez HTTP/1.1\r\nHost: it\r\n\r\n";
	const char *what[2] = { "a request whose headers drip", "a request whose body drips" };
	int64_t cut[2] = { -1, -1 }, t0;
	struct it_response r;
	char buf[1024];
	int fd[2];

	it_call(&d, "PUT", "/v1/layers/dl", "{\"num_features\": 1}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	fd[0] = connect_from("127.0.0.1", 2000);
	fd[1] = connect_from("127.0.0.1", 2000);
	if (!CHECK(fd[0] >= 0 && fd[1] >= 0 && send_all(fd[0], head_head, sizeof(head_head) - 1) &&
			send_all(fd[1], body_head, sizeof(body_head) - 1)))
		goto out;
	t0 = now_ms();
	while (now_ms() - t0 < 8000 && (cut[0] < 0 || cut[1] < 0)) {
		it_sleep_ms(250);
		for (int i = 0; i < 2; i++)
			if (cut[i] < 0 && (closed_by_peer(fd[i]) || !send_all(fd[i], i ? "1" : "a", 1)))
				cut[i] = now_ms() - t0;
	}
	for (int i = 0; i < 2; i++) {
		printf("--request-timeout 2: %s was cut after %lld ms\n", what[i], (long long)cut[i]);
		CHECKF(cut[i] >= 1500 && cut[i] <= 8000, "--request-timeout 2: %s was cut after %lld ms "
			"(-1: still open after 8 s)", what[i], (long long)cut[i]);
	}
	/* Each request's clock starts anew on a kept-alive connection: 5 quick requests over 4 s. */
	close(fd[0]);
	fd[0] = connect_from("127.0.0.1", 2000);
	for (int i = 0; i < 5 && CHECK(fd[0] >= 0); i++) {
		int status = send_all(fd[0], livez, sizeof(livez) - 1) ? read_answer(fd[0], 5000, buf, sizeof(buf)) : 0;

		CHECKF(status == 200, "request %d on one kept-alive connection, 1 s apart: status %d", i + 1, status);
		it_sleep_ms(i < 4 ? 1000 : 0);
	}
out:
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

struct text {
	const char *p;
	size_t left;
};

/* Spaces while left lasts; the body of a chunked upload (JSON whitespace, so it would parse). */
static size_t gen_text(char *buf, size_t size, void *ctx)
{
	struct text *t = ctx;
	size_t n = size < t->left ? size : t->left;

	if (t->p) {
		memcpy(buf, t->p, n);
		t->p += n;
	} else {
		memset(buf, ' ', n);
	}
	t->left -= n;
	return n;
}

/* The sum of the request counters with this status. */
static double count_status(const char *status)
{
	struct it_response r;
	char label[32];
	double sum = 0;

	snprintf(label, sizeof(label), "status=\"%s\"", status);
	it_call(&d, "GET", "/metrics", NULL, &r);
	for (const char *p = r.body; p && *p;) {
		size_t n = strcspn(p, "\n");
		char line[512], *brace;

		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		brace = strrchr(line, '}');
		if (!strncmp(line, "batchnormd_http_requests_total{", 31) && strstr(line, label) && brace)
			sum += strtod(brace + 1, NULL);
		p += n + (p[n] == '\n');
	}
	it_response_finish(&r);
	return sum;
}

static void test_chunked(void)
{
	const char *chunked[] = { "Transfer-Encoding: chunked", NULL };
	const char *paths[] = { "/v1/layers/c/eval", "/v1/layers/c/train" };
	static const char small[] = "{\"input\": [[0.0, 1.0], [3.0, 5.0]]}";
	struct it_snapshot before, after;
	struct it_response r;
	double counted;

	it_call(&d, "PUT", "/v1/layers/c", "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	it_snapshot_take(&d, "c", &before);
	counted = count_status("413");
	for (size_t i = 0; i < 2; i++) {
		struct text t = { NULL, 4 * MAX_BODY };
		char what[128];

		snprintf(what, sizeof(what), "a chunked body of %d bytes to %s", 4 * MAX_BODY, paths[i]);
		it_request_gen(&d, "POST", paths[i], chunked, t.left, gen_text, &t, &r);
		it_check_problem(&r, 413, "too_large", what);
		it_response_finish(&r);
	}
	CHECKF(count_status("413") == counted + 2, "/metrics counted %.0f new 413s, expected 2",
		count_status("413") - counted);
	it_snapshot_take(&d, "c", &after);
	CHECKF(it_snapshot_equal(&before, &after), "a chunked body over the cap changed the layer");
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
	/* Under the cap a chunked body is taken whole. */
	struct text t = { small, sizeof(small) - 1 };
	it_request_gen(&d, "POST", "/v1/layers/c/eval", chunked, t.left, gen_text, &t, &r);
	CHECKF(r.status == 200, "a small chunked body: %ld %.200s", r.status, r.body);
	it_response_finish(&r);
}

static void test_names(void)
{
	static const char *const bad[] = {
		"a%00xyz", "a%00", "%00a", "a%2Fb", "a%2fb", "a%2F", "%2Fa", "a%2F..%2F..%2Fb", "a%20b", "%2E%2E",
		"%2e%2e", "%2E", "..", "a%5Cb", "a%0Ab", "a%0D%0Ab", "a%25", "a%", "a%4", "a%zz", "a%FF", "a%3Fb",
		"a%23b", "a%3Bb", "%2Da", "a%C3%A9",
	};
	static const struct { const char *method, *suffix, *body; } uses[] = {
		{ "PUT", "", "{\"num_features\": 1}" },
		{ "GET", "", NULL },
		{ "PATCH", "", "{\"eps\": 0.1}" },
		{ "DELETE", "", NULL },
		{ "POST", "/train", "{\"input\": [[0.0], [1.0]]}" },
		{ "POST", "/eval", "{\"input\": [[0.0], [1.0]]}" },
		{ "GET", "/state", NULL },
		{ "PUT", "/state", "{\"running_mean\": [0.5]}" },
		{ "POST", "/reset", NULL },
		{ "GET", "/history", NULL },
		{ "POST", "", NULL },        /* a method the route does not take */
		{ "GET", "/nope", NULL },    /* a sub-path that does not exist */
	};
	struct it_snapshot before, after;
	struct it_response r;
	char path[256], what[320];

	it_call(&d, "PUT", "/v1/layers/a", "{\"num_features\": 1}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/a/train", "{\"input\": [[0.0], [1.0]]}", &r);
	CHECK(r.status == 200);
	it_response_finish(&r);
	it_snapshot_take(&d, "a", &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t k = 0; k < sizeof(uses) / sizeof(uses[0]); k++) {
			snprintf(path, sizeof(path), "/v1/layers/%s%s", bad[i], uses[k].suffix);
			snprintf(what, sizeof(what), "%s %s", uses[k].method, path);
			it_request(&d, uses[k].method, path, NULL, uses[k].body,
				uses[k].body ? strlen(uses[k].body) : 0, &r);
			it_check_problem(&r, 400, "invalid_name", what);
			it_response_finish(&r);
		}
		it_snapshot_take(&d, "a", &after);
		CHECKF(after.status == 200 && it_snapshot_equal(&before, &after),
			"layer a is gone or changed after the requests on /v1/layers/%s (GET a: %ld)", bad[i], after.status);
		it_snapshot_finish(&after);
	}
	it_snapshot_finish(&before);
	/* An escape of a byte in the grammar is that byte. */
	it_call(&d, "GET", "/v1/layers/%61", NULL, &r);
	CHECKF(r.status == 200 && !strcmp(json_string_value(it_get(r.json, "name", NULL)) ? json_string_value(
		it_get(r.json, "name", NULL)) : "", "a"), "GET /v1/layers/%%61: %ld %.200s", r.status, r.body);
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/%61/eval", "{\"input\": [[0.0], [1.0]]}", &r);
	CHECKF(r.status == 200, "POST /v1/layers/%%61/eval: %ld %.200s", r.status, r.body);
	it_response_finish(&r);
	/* A valid name under a sub-path that does not exist is still 404; so is a dashboard file with a tail. */
	it_call(&d, "GET", "/v1/layers/a/nope", NULL, &r);
	it_check_problem(&r, 404, "not_found", "GET /v1/layers/a/nope");
	it_response_finish(&r);
	it_call(&d, "GET", "/app.js%00.map", NULL, &r);
	it_check_problem(&r, 404, "not_found", "GET /app.js%00.map");
	it_response_finish(&r);
}

/*
 * With an open-file limit of 300 (hard; the soft one 100) the daemon must
 * raise its soft limit to the hard one, and, since even that cannot hold
 * 1000 connections, lower its connection limit to fit, so that shedding
 * starts before accept() runs out of descriptors. Started through a shell
 * that sets the limits and execs it.
 */
static void test_nofile(const char *exe)
{
	char script[4400], path[256], names[10][16];
	const char *srcs[10];
	const char *args[] = { "--sync", "normal", "--threads", "2", NULL };

	snprintf(script, sizeof(script), "#!/bin/sh\nulimit -Sn %d && ulimit -Hn %d || exit 125\nexec '%s' \"$@\"\n",
		NOFILE / 3, NOFILE, exe);
	if (!CHECK(it_write_file(&d, "nofile.sh", script, path, sizeof(path)) == 0 && chmod(path, 0700) == 0))
		return;
	snprintf(d.exe, sizeof(d.exe), "%s", path);
	if (CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start under ulimit -Hn %d", NOFILE)) {
		for (int i = 0; i < 10; i++) {
			snprintf(names[i], sizeof(names[i]), "127.0.0.%d", 60 + i);
			srcs[i] = names[i];
		}
		size_t open = flood("300 slow from 10 addresses, ulimit -Hn 300 -Sn 100", srcs, 10, NOFILE);
		CHECKF(open < NOFILE - 64, "%zu slow connections stayed open under ulimit -Hn %d", open, NOFILE);
		CHECKF(open > NOFILE / 2, "only %zu slow connections stayed open: the soft limit of %d was not raised "
			"to the hard one", open, NOFILE / 3);
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	}
	snprintf(d.exe, sizeof(d.exe), "%s", exe);
}

/* Enough descriptors for 1000 connections and more. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		CHECKF(rl.rlim_cur >= 1200, "the test needs 1200 open files; ulimit -n is %llu",
			(unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
	char max_body[24], exe[sizeof(d.exe)];
	const char *args[] = { "--sync", "normal", "--max-body-bytes", max_body, NULL };
	const char *deadline_args[] = { "--sync", "normal", NULL };
	void (*const tests[])(void) = {
		test_names, test_chunked, test_flood_one_address, test_flood_spread, NULL,
	};

	raise_nofile();
	snprintf(max_body, sizeof(max_body), "%d", MAX_BODY);
	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	snprintf(exe, sizeof(exe), "%s", d.exe);
	if (CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start")) {
		for (size_t i = 0; tests[i] && CHECKF(it_daemon_alive(&d), "batchnormd died"); i++)
			tests[i]();
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	}
	/* The variable rather than the flag, so that a daemon without the deadline starts too (and fails). */
	setenv("BATCHNORMD_REQUEST_TIMEOUT", "2", 1);
	if (CHECKF(it_daemon_start(&d, deadline_args) == 0, "batchnormd did not start with --request-timeout 2")) {
		test_deadline();
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	}
	unsetenv("BATCHNORMD_REQUEST_TIMEOUT");
	test_nofile(exe);
	it_daemon_finish(&d);
	return it_exit_status("http_hostile");
}
