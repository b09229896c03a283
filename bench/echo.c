/*
 * echo.c: the bare libmicrohttpd server that bench/cpu holds batchnormd
 * against. It answers every POST with the bytes it was sent, as
 * application/x-npy, doing what any server must for that and nothing more:
 * the body is gathered into one buffer (sized from Content-Length) and that
 * buffer is handed to libmicrohttpd as the answer, without a copy. It runs
 * with the daemon's threading (an internal polling thread per worker, epoll)
 * so the two differ only in what batchnormd does with a request.
 *
 *   echo PORT THREADS     (PORT 0: any free one; prints "listening on URL")
 *
 * Listens on 127.0.0.1 only; SIGTERM or SIGINT stops it.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest body taken: bench bodies are a few MiB. */
#define BODY_MAX ((size_t)256 << 20)

struct body {
	char *data;
	size_t len, cap;
};

static int grow(struct body *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 65536;
	char *p;

	if (need > BODY_MAX)
		return -1;
	while (cap < need)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload_data,
		size_t *upload_size, void **con_cls)
{
	struct body *b = *con_cls;
	struct MHD_Response *r;
	enum MHD_Result ok;

	(void)cls, (void)url, (void)method, (void)version;
	if (!b) {
		const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		if (len && grow(b, strtoull(len, NULL, 10) + 1) < 0)
			return MHD_NO;
		return MHD_YES;
	}
	if (*upload_size) {
		if (grow(b, b->len + *upload_size) < 0)
			return MHD_NO;
		memcpy(b->data + b->len, upload_data, *upload_size);
		b->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
	if (!r)
		return MHD_NO;
	b->data = NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-npy");
	ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		enum MHD_RequestTerminationCode toe)
{
	struct body *b = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (b) {
		free(b->data);
		free(b);
		*con_cls = NULL;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *mhd;
	sigset_t stop;
	int sig;

	if (argc < 2) {
		fprintf(stderr, "usage: echo PORT [THREADS]\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)strtoul(argv[1], NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC,
		0, NULL, NULL, on_request, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, threads ? threads : 1,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!mhd) {
		fprintf(stderr, "echo: cannot listen\n");
		return 1;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on http://127.0.0.1:%u\n", info ? info->port : 0);
	fflush(stdout);
	sigwait(&stop, &sig);
	MHD_stop_daemon(mhd);
	return 0;
}
