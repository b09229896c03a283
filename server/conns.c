/*
 * conns.c: request deadlines and shedding for slow clients (conns.h).
 *
 * One mutex guards the table; libmicrohttpd's threads take it a few times
 * per connection and per request, the reaper twice a second. The table is
 * a plain list: the scans (one per reaper pass, one per new connection
 * when near the limit) are over at most --max-connections entries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "conns.h"

struct conn {
	struct bnd_conns *owner;
	struct conn *prev, *next;
	int fd;
	double started;       /* when the current request's clock started */
	bool answering;       /* the request is in; its answer is being sent */
	bool cut;             /* shut down already; waiting for libmicrohttpd to close it */
	char addr[INET6_ADDRSTRLEN];
};

struct bnd_conns {
	struct bnd_conns_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t reaper;
	bool stopping;
	struct conn *head;
	size_t count;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The table entry of a connection, from its socket context. */
static struct conn *entry_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* Shut the socket down so that libmicrohttpd closes the connection. Under the lock. */
static void cut(struct conn *e, const char *why)
{
	e->cut = true;
	if (shutdown(e->fd, SHUT_RDWR) < 0 && errno != ENOTCONN)
		perror("http: shutdown");
	fprintf(stderr, "http: closed the connection from %s: %s\n", e->addr, why);
}

/*
 * The entry whose request has been under way the longest, other than
 * except: requests still arriving first, then answers still being sent.
 */
static struct conn *oldest(struct bnd_conns *c, const struct conn *except)
{
	struct conn *best = NULL;

	for (struct conn *e = c->head; e; e = e->next) {
		if (e == except || e->cut)
			continue;
		if (!best || (best->answering && !e->answering) ||
		    (best->answering == e->answering && e->started < best->started))
			best = e;
	}
	return best;
}

static void add(struct bnd_conns *c, struct MHD_Connection *conn, void **socket_context)
{
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *sa = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct conn *e = calloc(1, sizeof(*e));
	struct conn *victim;

	/* Without an entry the connection is only bounded by libmicrohttpd's own limits. */
	if (!e || !fd) {
		free(e);
		return;
	}
	e->owner = c;
	e->fd = fd->connect_fd;
	e->started = now();
	snprintf(e->addr, sizeof(e->addr), "?");
	if (sa && sa->client_addr && sa->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa->client_addr)->sin_addr, e->addr, sizeof(e->addr));
	else if (sa && sa->client_addr && sa->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa->client_addr)->sin6_addr, e->addr, sizeof(e->addr));
	*socket_context = e;

	pthread_mutex_lock(&c->lock);
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	c->count++;
	/* Near the limit, the newcomer takes the place of the longest request under way. */
	if (c->cfg.reserve && c->count + c->cfg.reserve > c->cfg.max_connections && (victim = oldest(c, e)))
		cut(victim, "the connection limit is near and its request was the oldest under way");
	pthread_mutex_unlock(&c->lock);
}

static void drop(struct bnd_conns *c, void **socket_context)
{
	struct conn *e = *socket_context;

	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	c->count--;
	pthread_mutex_unlock(&c->lock);
	free(e);
	*socket_context = NULL;
}

void bnd_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		add(cls, conn, socket_context);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		drop(cls, socket_context);
}

void bnd_conns_answering(struct MHD_Connection *conn)
{
	struct conn *e = entry_of(conn);

	if (!e)
		return;
	pthread_mutex_lock(&e->owner->lock);
	e->answering = true;
	pthread_mutex_unlock(&e->owner->lock);
}

void bnd_conns_request_done(struct MHD_Connection *conn)
{
	struct conn *e = entry_of(conn);

	if (!e)
		return;
	pthread_mutex_lock(&e->owner->lock);
	e->answering = false;
	e->started = now();
	pthread_mutex_unlock(&e->owner->lock);
}

bool bnd_conns_unread(struct bnd_conns *c)
{
	bool any = false;

	pthread_mutex_lock(&c->lock);
	for (struct conn *e = c->head; e && !any; e = e->next) {
		int n = 0;

		any = !e->cut && ioctl(e->fd, FIONREAD, &n) == 0 && n > 0;
	}
	pthread_mutex_unlock(&c->lock);
	return any;
}

/* Cut every request past its deadline. Under the lock. */
static void reap(struct bnd_conns *c)
{
	double t = now();
	char why[96];

	snprintf(why, sizeof(why), "its request took longer than %.0f s (--request-timeout)",
		c->cfg.request_timeout);
	for (struct conn *e = c->head; e; e = e->next)
		if (!e->cut && !e->answering && t - e->started > c->cfg.request_timeout)
			cut(e, why);
}

static void *reaper_main(void *arg)
{
	struct bnd_conns *c = arg;
	/* Often enough that a request is cut soon after its deadline, and at most twice a second. */
	double period = c->cfg.request_timeout / 4 < 0.5 ? c->cfg.request_timeout / 4 : 0.5;
	long period_ns = (long)(period * 1e9);
	struct timespec next;

	pthread_mutex_lock(&c->lock);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!c->stopping) {
		next.tv_nsec += period_ns;
		next.tv_sec += next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (!c->stopping && pthread_cond_timedwait(&c->wake, &c->lock, &next) != ETIMEDOUT)
			;
		if (!c->stopping)
			reap(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int bnd_conns_create(const struct bnd_conns_config *cfg, struct bnd_conns **ret)
{
	struct bnd_conns *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;
	int rc;

	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (c->cfg.request_timeout < 0.01)
		c->cfg.request_timeout = 0.01;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&c->lock, NULL);
	rc = pthread_create(&c->reaper, NULL, reaper_main, c);
	if (rc) {
		pthread_cond_destroy(&c->wake);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return -rc;
	}
	*ret = c;
	return 0;
}

void bnd_conns_destroy(struct bnd_conns *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->reaper, NULL);
	/* libmicrohttpd reports every connection closed when it stops; free any it did not. */
	while (c->head) {
		struct conn *e = c->head;

		c->head = e->next;
		free(e);
	}
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
