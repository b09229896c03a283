/*
 * harness.c: start, drive and stop the real batchnormd for the integration tests.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

static atomic_uint failures;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

bool it_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	atomic_fetch_add(&failures, 1);
	pthread_mutex_lock(&print_lock);
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&print_lock);
	return false;
}

unsigned it_failures(void)
{
	return atomic_load(&failures);
}

int it_exit_status(const char *test_name)
{
	unsigned n = it_failures();

	printf("%s: %s (%u failed checks)\n", test_name, n ? "FAILED" : "ok", n);
	return n ? 1 : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll interval while waiting for a condition under a deadline. */
static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int it_daemon_init(struct it_daemon *d, int argc, char **argv)
{
	const char *exe = argc > 1 ? argv[1] : getenv("BATCHNORMD");

	memset(d, 0, sizeof(*d));
	d->out_fd = -1;
	pthread_once(&curl_once, curl_init_once);
	/* A test run from a shell with no daemon is a skip, not a failure. */
	if (!exe || !*exe) {
		fprintf(stderr, "no batchnormd: pass its path as argv[1] or BATCHNORMD\n");
		return -ENOENT;
	}
	/* Past this point a problem is the test's own, and a failure, not a skip. */
	if (strlen(exe) >= sizeof(d->exe)) {
		fprintf(stderr, "batchnormd path too long: %s\n", exe);
		exit(1);
	}
	strcpy(d->exe, exe);
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/bnd-it-XXXXXX", tmp);
	if (!mkdtemp(d->dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", d->dir, strerror(errno));
		exit(1);
	}
	snprintf(d->db, sizeof(d->db), "%s/layers.db", d->dir);
	if (it_store_pg() && it_pg_create(d) < 0) {
		rmdir(d->dir);
		d->dir[0] = '\0';
		return -ENOENT;
	}
	return 0;
}

static void *drain_stdout(void *arg)
{
	struct it_daemon *d = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(d->out_fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && fwrite(buf, 1, (size_t)n, stderr) != (size_t)n)
			break;
	return NULL;
}

/* Parse "...listening on http://127.0.0.1:PORT" out of one line. */
static int parse_port(const char *line)
{
	static const char prefix[] = "listening on http://127.0.0.1:";
	const char *p = strstr(line, prefix);
	char *end;
	long port;

	if (!p)
		return -1;
	p += sizeof(prefix) - 1;
	errno = 0;
	port = strtol(p, &end, 10);
	if (errno || end == p || port < 1 || port > 65535 || (*end && !isspace((unsigned char)*end) && *end != '/'))
		return -1;
	return (int)port;
}

/* Read stdout until the "listening on" line, under the start deadline. */
static int read_port(struct it_daemon *d, int64_t deadline)
{
	char line[4096];
	size_t len = 0;

	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = { .fd = d->out_fd, .events = POLLIN };

		if (left <= 0)
			return -ETIMEDOUT;
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return pr < 0 ? -errno : -ETIMEDOUT;
		ssize_t n = read(d->out_fd, line + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE; /* it exited, or closed stdout, before binding */
		if (line[len] == '\n' || len + 2 >= sizeof(line)) {
			line[len] = '\0';
			fprintf(stderr, "[batchnormd] %s\n", line);
			int port = parse_port(line);
			if (port > 0)
				return port;
			len = 0;
			continue;
		}
		len++;
	}
}

static bool exited(struct it_daemon *d, int *status)
{
	pid_t r = waitpid(d->pid, status, WNOHANG);

	if (r == d->pid) {
		d->pid = 0;
		return true;
	}
	return false;
}

bool it_daemon_alive(struct it_daemon *d)
{
	int status;

	if (!d->pid)
		return false;
	if (!exited(d, &status))
		return true;
	if (WIFSIGNALED(status))
		fprintf(stderr, "batchnormd died of signal %d\n", WTERMSIG(status));
	else
		fprintf(stderr, "batchnormd exited with status %d\n", WEXITSTATUS(status));
	return false;
}

static void stop_drain(struct it_daemon *d)
{
	if (d->draining) {
		pthread_join(d->drain, NULL);
		d->draining = false;
	}
	if (d->out_fd >= 0) {
		close(d->out_fd);
		d->out_fd = -1;
	}
}

static int wait_ready(struct it_daemon *d, int64_t deadline)
{
	for (;;) {
		struct it_response r;
		int status;

		it_request(d, "GET", "/readyz", NULL, NULL, 0, &r);
		long code = r.status;
		it_response_finish(&r);
		if (code == 200)
			return 0;
		if (exited(d, &status)) {
			fprintf(stderr, "batchnormd exited before it was ready (status %d)\n", status);
			return -ECHILD;
		}
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		pause_ms(20);
	}
}

int it_daemon_start(struct it_daemon *d, const char *const extra_args[])
{
	const char *argv[64];
	size_t argc = 0;
	int fds[2];
	int64_t deadline = now_ms() + IT_START_TIMEOUT_MS;
	int r;

	argv[argc++] = d->exe;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = d->store[0] ? "--store" : "--db";
	argv[argc++] = d->store[0] ? d->store : d->db;
	for (size_t i = 0; extra_args && extra_args[i]; i++) {
		if (argc + 2 > sizeof(argv) / sizeof(argv[0]))
			return -E2BIG;
		argv[argc++] = extra_args[i];
	}
	argv[argc] = NULL;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0) {
		/* A test that dies must not leave its daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	d->pid = pid;
	d->out_fd = fds[0];

	r = read_port(d, deadline);
	if (r < 0) {
		fprintf(stderr, "no \"listening on\" line from %s: %s\n", d->exe, strerror(-r));
		goto fail;
	}
	d->port = r;
	snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
	if (pthread_create(&d->drain, NULL, drain_stdout, d) == 0)
		d->draining = true;
	r = wait_ready(d, deadline);
	if (r < 0) {
		fprintf(stderr, "GET /readyz never answered 200: %s\n", strerror(-r));
		goto fail;
	}
	return 0;
fail:
	it_daemon_kill(d);
	return r;
}

int it_daemon_stop(struct it_daemon *d)
{
	if (!d->pid)
		return -1;
	kill(d->pid, SIGTERM);
	return it_daemon_wait(d);
}

int it_daemon_wait(struct it_daemon *d)
{
	int64_t deadline = now_ms() + IT_STOP_TIMEOUT_MS;
	int status = 0;

	if (!d->pid)
		return -1;
	while (!exited(d, &status)) {
		if (now_ms() > deadline) {
			fprintf(stderr, "batchnormd did not exit within %d ms\n", IT_STOP_TIMEOUT_MS);
			it_daemon_kill(d);
			return -1;
		}
		pause_ms(10);
	}
	stop_drain(d);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "batchnormd died of signal %d\n", WTERMSIG(status));
	return -1;
}

void it_daemon_kill(struct it_daemon *d)
{
	if (d->pid) {
		kill(d->pid, SIGKILL);
		while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
			;
		d->pid = 0;
	}
	stop_drain(d);
}

void it_daemon_finish(struct it_daemon *d)
{
	it_daemon_kill(d);
	it_pg_drop(d);
	if (!d->dir[0])
		return;
	DIR *dir = opendir(d->dir);
	if (dir) {
		struct dirent *e;
		char path[512];

		while ((e = readdir(dir))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
			unlink(path);
		}
		closedir(dir);
	}
	rmdir(d->dir);
	d->dir[0] = '\0';
}

int it_write_file(struct it_daemon *d, const char *name, const char *content,
		char *path, size_t path_size)
{
	if ((size_t)snprintf(path, path_size, "%s/%s", d->dir, name) >= path_size)
		return -ENAMETOOLONG;
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(content, f);
	return fclose(f) ? -EIO : 0;
}

/* ---- HTTP ---- */

struct sink {
	char *data;
	size_t len, cap;
	bool oom;
};

static size_t write_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n;

	if (s->oom)
		return 0;
	if (s->len + add + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + add + 1)
			cap *= 2;
		char *data = realloc(s->data, cap);
		if (!data) {
			s->oom = true;
			return 0;
		}
		s->data = data;
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, add);
	s->len += add;
	s->data[s->len] = '\0';
	return add;
}

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t write_header(char *p, size_t size, size_t n, void *arg)
{
	struct it_response *r = arg;
	size_t len = size * n;
	static const struct { const char *name; size_t off, size; } wanted[] = {
		{ "etag", offsetof(struct it_response, etag), sizeof(((struct it_response *)0)->etag) },
		{ "location", offsetof(struct it_response, location), sizeof(((struct it_response *)0)->location) },
		{ "allow", offsetof(struct it_response, allow), sizeof(((struct it_response *)0)->allow) },
		{ "content-type", offsetof(struct it_response, content_type), sizeof(((struct it_response *)0)->content_type) },
		{ "www-authenticate", offsetof(struct it_response, www_authenticate),
		  sizeof(((struct it_response *)0)->www_authenticate) },
		{ "retry-after", offsetof(struct it_response, retry_after),
		  sizeof(((struct it_response *)0)->retry_after) },
	};

	/* A new status line (after a 100 Continue, say) starts a fresh header set. */
	if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
		for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
			((char *)r + wanted[i].off)[0] = '\0';
		return len;
	}
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return len;
	size_t name_len = (size_t)(colon - p);
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (strlen(wanted[i].name) == name_len && !strncasecmp(p, wanted[i].name, name_len)) {
			copy_value((char *)r + wanted[i].off, wanted[i].size, colon + 1,
					len - name_len - 1);
			break;
		}
	}
	return len;
}

void it_response_finish(struct it_response *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

struct gen_body {
	size_t (*gen)(char *buf, size_t size, void *ctx);
	void *ctx;
};

static size_t read_gen(char *buf, size_t size, size_t n, void *arg)
{
	struct gen_body *g = arg;

	return g->gen(buf, size * n, g->ctx);
}

static bool names_header(const char *const headers[], const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers && headers[i]; i++)
		if (!strncasecmp(headers[i], name, n) && headers[i][n] == ':')
			return true;
	return false;
}

static int perform(const struct it_daemon *d, const char *method, const char *path,
		const char *const headers[], const void *body, size_t len,
		struct gen_body *gen, struct it_response *r)
{
	struct curl_slist *hl = NULL;
	struct sink sink = { 0 };
	char url[1024];
	CURL *c;

	memset(r, 0, sizeof(*r));
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s%s", d->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, write_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);

	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (!strcmp(method, "GET") && !body && !gen)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (gen) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_gen);
		curl_easy_setopt(c, CURLOPT_READDATA, gen);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if ((body || gen) && !names_header(headers, "Content-Type"))
		hl = curl_slist_append(hl, "Content-Type: application/json");
	/* Send the body at once unless the test asks for 100-continue. */
	if (!names_header(headers, "Expect"))
		hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);

	CURLcode rc = curl_easy_perform(c);
	r->curl_code = (int)rc;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);

	r->body = sink.data ? sink.data : calloc(1, 1);
	r->len = sink.len;
	if (rc != CURLE_OK) {
		r->status = 0;
		return -EIO;
	}
	if (strstr(r->content_type, "json"))
		r->json = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	return 0;
}

int it_request(const struct it_daemon *d, const char *method, const char *path,
		const char *const headers[], const void *body, size_t len,
		struct it_response *r)
{
	return perform(d, method, path, headers, body, len, NULL, r);
}

int it_request_gen(const struct it_daemon *d, const char *method, const char *path,
		const char *const headers[], size_t total,
		size_t (*gen)(char *buf, size_t size, void *ctx), void *ctx,
		struct it_response *r)
{
	struct gen_body g = { gen, ctx };

	return perform(d, method, path, headers, NULL, total, &g, r);
}

int it_call(const struct it_daemon *d, const char *method, const char *path,
		const char *json_body, struct it_response *r)
{
	return perform(d, method, path, NULL, json_body, json_body ? strlen(json_body) : 0, NULL, r);
}

/* ---- checks ---- */

void it_check_problem(const struct it_response *r, long status, const char *code,
		const char *what)
{
	if (!CHECKF(r->status == status, "%s: status %ld, expected %ld; body %.300s",
			what, r->status, status, r->body ? r->body : ""))
		return;
	CHECKF(!strncmp(r->content_type, "application/problem+json", 24),
			"%s: Content-Type '%s', expected application/problem+json", what, r->content_type);
	if (!CHECKF(json_is_object(r->json), "%s: body is not a JSON object: %.300s", what, r->body))
		return;
	json_t *st = json_object_get(r->json, "status");
	CHECKF(json_is_integer(st) && json_integer_value(st) == status,
			"%s: problem status does not equal the HTTP status %ld", what, status);
	static const char *const strings[] = { "type", "title", "detail", "code" };
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_object_get(r->json, strings[i]);
		CHECKF(json_is_string(v) && json_string_length(v) > 0,
				"%s: problem has no non-empty string '%s': %.300s", what, strings[i], r->body);
	}
	const char *got = json_string_value(json_object_get(r->json, "code"));
	if (code && got)
		CHECKF(!strcmp(got, code), "%s: code '%s', expected '%s' (detail: %s)", what, got, code,
				json_string_value(json_object_get(r->json, "detail")));
}

static void no_null(const json_t *j, const char *key, const char *what)
{
	if (json_is_null(j)) {
		CHECKF(key && (!strcmp(key, "momentum") || !strcmp(key, "next_after")),
				"%s: key '%s' is null (absent keys must be left out)", what, key ? key : "(array element)");
	} else if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)j, k, v)
			no_null(v, k, what);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v)
			no_null(v, NULL, what);
	}
}

void it_check_no_null(const json_t *j, const char *what)
{
	no_null(j, NULL, what);
}

void it_check_time(const char *s, const char *what)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	bool ok = s && strlen(s) == sizeof(pattern) - 1;

	for (size_t i = 0; ok && pattern[i]; i++)
		ok = pattern[i] == 'd' ? isdigit((unsigned char)s[i]) : s[i] == pattern[i];
	CHECKF(ok, "%s: time '%s' is not RFC 3339 UTC with milliseconds", what, s ? s : "(missing)");
}

bool it_header_has(const char *list, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',' && *end != ' ')
			end++;
		if ((size_t)(end - p) == n && !strncmp(p, token, n))
			return true;
		p = end;
	}
	return false;
}

float it_f32(const char *decimal)
{
	return strtof(decimal, NULL);
}

float it_json_f32(const json_t *v)
{
	if (!json_is_number(v))
		return NAN;
	return (float)json_number_value(v);
}

bool it_same_f32(float a, float b)
{
	return !memcmp(&a, &b, sizeof(a));
}

static long flatten(const json_t *j, float *out, size_t max, size_t at)
{
	if (json_is_number(j)) {
		if (at >= max)
			return -1;
		out[at] = it_json_f32(j);
		return (long)at + 1;
	}
	if (!json_is_array(j))
		return -1;
	size_t i;
	json_t *v;
	long n = (long)at;
	json_array_foreach(j, i, v) {
		n = flatten(v, out, max, (size_t)n);
		if (n < 0)
			return -1;
	}
	return n;
}

long it_json_floats(const json_t *arr, float *out, size_t max)
{
	if (!json_is_array(arr))
		return -1;
	return flatten(arr, out, max, 0);
}

json_t *it_get(const json_t *j, ...)
{
	va_list ap;
	const char *key;

	va_start(ap, j);
	while (j && (key = va_arg(ap, const char *)))
		j = json_object_get(j, key);
	va_end(ap);
	return (json_t *)j;
}

bool it_wait_metric(const struct it_daemon *d, const char *line, int timeout_ms)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		struct it_response r;
		bool seen;

		it_call(d, "GET", "/metrics", NULL, &r);
		seen = r.body && strstr(r.body, want);
		it_response_finish(&r);
		if (seen)
			return true;
		nanosleep(&tick, NULL);
	}
	return false;
}

bool it_wait_commit_queue(const struct it_daemon *d, int n)
{
	char want[64];

	snprintf(want, sizeof(want), "batchnormd_commit_queue %d", n);
	return CHECKF(it_wait_metric(d, want, 20000), "/metrics never showed %s", want);
}

void it_touch(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	if (!CHECKF(f != NULL, "cannot write %s", path))
		return;
	fputs(content, f);
	fclose(f);
}

void it_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void it_snapshot_take(const struct it_daemon *d, const char *name, struct it_snapshot *s)
{
	struct it_response r;
	char path[512];

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/v1/layers/%s", name);
	it_call(d, "GET", path, NULL, &r);
	s->status = r.status;
	snprintf(s->etag, sizeof(s->etag), "%s", r.etag);
	it_response_finish(&r);
	snprintf(path, sizeof(path), "/v1/layers/%s/state", name);
	it_call(d, "GET", path, NULL, &r);
	if (r.status == 200) {
		s->state = r.body;
		r.body = NULL;
	}
	it_response_finish(&r);
}

bool it_snapshot_equal(const struct it_snapshot *a, const struct it_snapshot *b)
{
	return a->status == b->status && a->state && b->state && !strcmp(a->state, b->state) &&
		a->etag[0] && !strcmp(a->etag, b->etag);
}

void it_snapshot_finish(struct it_snapshot *s)
{
	free(s->state);
	memset(s, 0, sizeof(*s));
}

/* ---- .npy ---- */

void *it_npy_build(const char *descr, bool fortran, const size_t *shape, unsigned rank,
		const float *data, size_t count, size_t *ret_len)
{
	char dict[512];
	int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': %s, 'shape': (",
			descr, fortran ? "True" : "False");
	for (unsigned i = 0; i < rank; i++)
		n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%zu%s", shape[i],
				rank == 1 ? "," : i + 1 < rank ? ", " : "");
	n += snprintf(dict + n, sizeof(dict) - (size_t)n, "), }");
	/* Pad with spaces and a newline so the data starts on a 64-byte boundary. */
	size_t hlen = (size_t)n + 1;
	hlen += (64 - (10 + hlen) % 64) % 64;
	size_t len = 10 + hlen + count * sizeof(float);
	unsigned char *buf = malloc(len);
	if (!buf)
		return NULL;
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)(hlen & 0xff);
	buf[9] = (unsigned char)(hlen >> 8);
	memset(buf + 10, ' ', hlen);
	memcpy(buf + 10, dict, (size_t)n);
	buf[10 + hlen - 1] = '\n';
	memcpy(buf + 10 + hlen, data, count * sizeof(float));
	*ret_len = len;
	return buf;
}

long it_npy_parse(const void *buf, size_t len, size_t *shape, unsigned *rank,
		float *out, size_t max)
{
	const unsigned char *b = buf;
	size_t hlen, off;

	if (len < 10 || memcmp(b, "\x93NUMPY", 6))
		return -1;
	if (b[6] == 1) {
		hlen = b[8] | (size_t)b[9] << 8;
		off = 10;
	} else if ((b[6] == 2 || b[6] == 3) && len >= 12) {
		hlen = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
		off = 12;
	} else {
		return -1;
	}
	if (hlen > len - off || hlen > 4096)
		return -1;
	char header[4097];
	memcpy(header, b + off, hlen);
	header[hlen] = '\0';
	off += hlen;
	if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False"))
		return -1;
	const char *p = strstr(header, "'shape': (");
	if (!p)
		return -1;
	p += 10;
	size_t count = 1;
	*rank = 0;
	while (*p != ')') {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		if (errno || end == p || *rank >= 5)
			return -1;
		shape[(*rank)++] = (size_t)v;
		count *= (size_t)v;
		p = end;
		while (*p == ',' || *p == ' ')
			p++;
		if (!*p)
			return -1;
	}
	if ((len - off) != count * sizeof(float) || count > max)
		return -1;
	memcpy(out, b + off, count * sizeof(float));
	return (long)count;
}

int it_run(struct it_daemon *d, const char *test_name, int argc, char **argv,
		const char *const extra_args[], void (*const tests[])(void))
{
	if (it_daemon_init(d, argc, argv) < 0)
		return 77;
	if (CHECKF(it_daemon_start(d, extra_args) == 0, "batchnormd did not start")) {
		/* After a death one failure says so; the tests after it would only repeat it. */
		for (size_t i = 0; tests[i] && it_daemon_alive(d); i++)
			tests[i]();
		if (CHECKF(it_daemon_alive(d), "batchnormd died"))
			CHECKF(it_daemon_stop(d) == 0, "batchnormd did not exit 0 on SIGTERM");
	}
	it_daemon_finish(d);
	return it_exit_status(test_name);
}

void it_step_values(int k, float x[IT_STEP_N * IT_STEP_C])
{
	static const float off0[IT_STEP_N] = { 0.0f, 0.5f, 1.0f, 1.5f }, off1[IT_STEP_N] = { 0.0f, 1.0f, 2.0f, 4.0f };

	for (int n = 0; n < IT_STEP_N; n++) {
		x[n * IT_STEP_C + 0] = (float)k + off0[n];
		x[n * IT_STEP_C + 1] = -0.5f * (float)k + off1[n];
	}
}

void it_step_json(int k, char *buf, size_t size)
{
	float x[IT_STEP_N * IT_STEP_C];
	size_t at = 0;

	it_step_values(k, x);
	at += (size_t)snprintf(buf, size, "{\"input\": [");
	for (int n = 0; n < IT_STEP_N; n++)
		at += (size_t)snprintf(buf + at, size - at, "%s[%.9g, %.9g]", n ? ", " : "",
				(double)x[n * IT_STEP_C], (double)x[n * IT_STEP_C + 1]);
	snprintf(buf + at, size - at, "]}");
}
