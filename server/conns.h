/*
 * conns.h: every open connection, when its current request started, and
 * what keeps slow clients from holding all of them.
 *
 * libmicrohttpd's own timeout (MHD_OPTION_CONNECTION_TIMEOUT) restarts with
 * every byte, so a client sending one byte every few seconds keeps its
 * connection for ever, and a thousand such clients fill the connection
 * limit. This module follows each connection from
 * MHD_OPTION_NOTIFY_CONNECTION with the time its current request started
 * (the connection's start, then the end of the previous request on a
 * kept-alive connection) and:
 *
 * - a reaper thread cuts the connections whose request has not been fully
 *   received within the request deadline;
 * - a new connection arriving when fewer than `reserve` slots are free
 *   cuts the connection whose request has been under way the longest, so
 *   there is always room for a new client.
 *
 * Cutting is shutdown(2) on the socket: libmicrohttpd then sees it fail and
 * closes the connection itself, so it stays the only owner of every
 * descriptor (the socket stays open until it reports the connection
 * closed, which is when it leaves the table here).
 */
#ifndef BND_CONNS_H
#define BND_CONNS_H

#include <microhttpd.h>
#include <stdbool.h>

struct bnd_conns;

struct bnd_conns_config {
	unsigned max_connections; /* the limit given to libmicrohttpd */
	unsigned reserve;         /* cut the oldest when fewer than this many slots are free; 0: never */
	double request_timeout;   /* seconds from a request's start to its last byte received */
};

/*
 * Make the table and start its reaper thread. 0 with *ret set, or
 * -ENOMEM / a negative errno from pthread_create (nothing is left behind).
 */
int bnd_conns_create(const struct bnd_conns_config *cfg, struct bnd_conns **ret);

/*
 * Stop the reaper and free the table. Call it after MHD_stop_daemon(),
 * when every connection has been reported closed. Accepts NULL.
 */
void bnd_conns_destroy(struct bnd_conns *c);

/*
 * The MHD_OPTION_NOTIFY_CONNECTION callback; cls is the struct bnd_conns.
 * On STARTED the connection enters the table (and, near the limit, the
 * oldest request is cut); on CLOSED it leaves it.
 */
void bnd_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		enum MHD_ConnectionNotificationCode code);

/*
 * The connection's request is fully received and its answer queued: its
 * deadline stops (sending the answer is bounded by libmicrohttpd's idle
 * timeout instead). Does nothing for a connection not in the table.
 */
void bnd_conns_answering(struct MHD_Connection *conn);

/* The connection's request is over: the next one's clock starts now. */
void bnd_conns_request_done(struct MHD_Connection *conn);

/*
 * Whether a connection has bytes received and not yet read: a request sent
 * before a SIGTERM that libmicrohttpd has not begun, which shutdown waits
 * for as for one under way.
 */
bool bnd_conns_unread(struct bnd_conns *c);

#endif
