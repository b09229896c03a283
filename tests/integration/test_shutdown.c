/*
 * test_shutdown.c: SIGTERM lets a request in flight finish, then exits 0.
 *
 * A train step's body is sent in two halves. Once the first half is on the
 * wire the daemon gets SIGTERM; then the second half goes. The step must
 * be answered 200, the daemon must exit with status 0, and after a restart
 * on the same database the step is there.
 *
 * Requests sent before SIGTERM on connections the daemon had not accepted
 * yet are answered too: with the daemon stopped (SIGSTOP), 40 clients
 * connect and send a whole GET; then SIGTERM and SIGCONT. Every one must
 * be answered 200 (a connection still in the listening socket's backlog
 * when the daemon stops accepting used to be reset).
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static struct it_daemon d;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool half_sent, signalled;

struct slow_body {
	const char *data;
	size_t len, at;
	unsigned calls;
};

static struct slow_body body;
static struct it_response answer;

static size_t gen_slowly(char *buf, size_t size, void *ctx)
{
	struct slow_body *b = ctx;

	/* The first call sends the first half; the next one is made once it is written. */
	if (b->calls++ == 1) {
		pthread_mutex_lock(&lock);
		half_sent = true;
		pthread_cond_broadcast(&cond);
		while (!signalled)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
	}
	size_t n = b->at == 0 ? b->len / 2 : b->len - b->at;
	if (n > size)
		n = size;
	memcpy(buf, b->data + b->at, n);
	b->at += n;
	return n;
}

static void *send_slowly(void *arg)
{
	(void)arg;
	it_request_gen(&d, "POST", "/v1/layers/sd/train", NULL, body.len, gen_slowly, &body, &answer);
	return NULL;
}

/* Wait (bounded) until the daemon stops taking new connections: it has seen the signal. */
static void wait_refusing(void)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 200; i++) {
		struct it_response r;

		it_call(&d, "GET", "/livez", NULL, &r);
		long status = r.status;
		it_response_finish(&r);
		if (status == 0)
			return;
		nanosleep(&tick, NULL);
	}
}

#define BACKLOG_CLIENTS 40

/* Connect to the daemon and send a whole GET of the layer; the socket, or -1. */
static int send_get(void)
{
	static const char req[] = "GET /v1/layers/sd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d.port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read the answer's status line: its status, or 0 when the connection ended without one. */
static int read_status(int fd)
{
	char buf[256];
	size_t got = 0;
	ssize_t n;
	int status = 0;

	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
		status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	close(fd);
	return status;
}

static void test_backlog(void)
{
	int fds[BACKLOG_CLIENTS], answered = 0;

	CHECK(kill(d.pid, SIGSTOP) == 0);
	for (int i = 0; i < BACKLOG_CLIENTS; i++)
		fds[i] = send_get();
	CHECK(kill(d.pid, SIGTERM) == 0);
	CHECK(kill(d.pid, SIGCONT) == 0);
	for (int i = 0; i < BACKLOG_CLIENTS; i++)
		if (fds[i] >= 0 && read_status(fds[i]) == 200)
			answered++;
	CHECKF(answered == BACKLOG_CLIENTS, "%d of %d requests sent before SIGTERM were answered 200",
		answered, BACKLOG_CLIENTS);
	printf("requests sent before SIGTERM, to a stopped daemon: %d of %d answered 200\n", answered, BACKLOG_CLIENTS);
	CHECKF(it_daemon_wait(&d) == 0, "batchnormd did not exit 0 after SIGTERM with requests in its backlog");
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", NULL };
	pthread_t thread;
	struct it_response r;
	char json[8192];
	size_t at = 0;

	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start"))
		goto out;
	it_call(&d, "PUT", "/v1/layers/sd", "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);

	at += (size_t)snprintf(json, sizeof(json), "{\"input\": [");
	for (int i = 0; i < 200; i++)
		at += (size_t)snprintf(json + at, sizeof(json) - at, "%s[%d.5, %d.25]", i ? ", " : "", i % 13, i % 7);
	snprintf(json + at, sizeof(json) - at, "]}");
	body = (struct slow_body){ .data = json, .len = strlen(json) };

	CHECK(pthread_create(&thread, NULL, send_slowly, NULL) == 0);
	pthread_mutex_lock(&lock);
	while (!half_sent)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	CHECK(kill(d.pid, SIGTERM) == 0);
	wait_refusing();
	pthread_mutex_lock(&lock);
	signalled = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);

	CHECKF(answer.status == 200, "the request in flight at SIGTERM got %ld (curl %d): %.200s", answer.status,
			answer.curl_code, answer.body ? answer.body : "");
	CHECK(json_integer_value(it_get(answer.json, "num_batches_tracked", NULL)) == 1);
	it_response_finish(&answer);
	CHECKF(it_daemon_wait(&d) == 0, "batchnormd did not exit 0 after SIGTERM with a request in flight");

	if (CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not restart")) {
		it_call(&d, "GET", "/v1/layers/sd/state", NULL, &r);
		CHECKF(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == 1,
				"the step answered during shutdown is not in the store: %.200s", r.body);
		it_response_finish(&r);
		test_backlog();
	}
out:
	it_daemon_finish(&d);
	return it_exit_status("http_shutdown");
}
