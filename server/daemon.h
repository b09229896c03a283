/*
 * daemon.h: the daemon's settings and the state every handler reaches.
 */
#ifndef BND_DAEMON_H
#define BND_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "store.h"
#include "store_check.h"

struct bnd_conns;
struct bnd_committer;
struct bnd_store_workers;

struct bnd_options {
	char host[64];          /* an IPv4 or IPv6 literal */
	unsigned port;          /* 0: any free port */
	const char *db_path;    /* the SQLite file; NULL on PostgreSQL */
	const char *store_url;  /* --store; set from db_path when not given */
	const char *store_password_file;
	char store_url_buf[4096 + 8];
	unsigned threads;
	size_t max_body_bytes;
	size_t max_elements;
	size_t max_layers;
	size_t max_features;
	size_t max_import_layers; /* layers in one POST /v1/import */
	int64_t history_limit;
	int64_t history_bytes;  /* history kept per layer, bytes as bnd_store_train counts them */
	size_t max_memory;      /* the memory budget (budget.h) */
	bool sync_full;
	const char *token_file;
	int start_check;        /* an enum bnd_check_kind, or -1: none */
	unsigned max_connections;   /* at once, all clients */
	unsigned max_per_client;    /* at once from one address; 0: no cap */
	bool max_per_client_set;    /* given; otherwise a quarter of max_connections */
	unsigned request_timeout;   /* seconds to receive one whole request */
	size_t commit_queue;        /* changes waiting for or in a commit, at most */
	unsigned fair_changes;      /* changes run at once beside other requests; 0: no limit */
	bool fair_changes_set;      /* given; otherwise the number of threads */
	unsigned store_workers;     /* a shared store's worker threads; 0: its pool's size */
};

struct bnd_daemon {
	struct bnd_options opt;
	struct bnd_store *store;
	struct bnd_registry registry;
	char *token;            /* NULL: no authentication */
	size_t token_len;
	atomic_int in_flight;   /* requests begun and not yet answered */
	struct bnd_conns *conns; /* open connections and their request deadlines */
	struct bnd_committer *committer; /* writes every change (commit.h) */
	struct bnd_store_workers *workers; /* a shared store's: run the requests that reach it */
};

#endif
