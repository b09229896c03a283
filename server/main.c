/*
 * main.c: batchnormd's flags, start-up and shutdown.
 *
 * Each flag has an environment variable (BATCHNORMD_LISTEN for --listen,
 * and so on); a flag wins over its variable. Bad values are a message and
 * exit status 2. SIGTERM and SIGINT stop accepting, let the requests under
 * way finish, close the database and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "commands.h"
#include "commit.h"
#include "budget.h"
#include "http.h"
#include "metrics.h"
#include "secret_file.h"
#include "store_workers.h"

#define VERSION "0.1.0"

struct flag {
	const char *name; /* without the leading -- */
	const char *env;
	const char *help;
	const char *expect; /* what a bad value is told it should have been */
};

static const struct flag flags[] = {
	{ "listen", "BATCHNORMD_LISTEN", "ADDR:PORT to listen on (default 127.0.0.1:8080; port 0: any free one)",
	  "an IPv4 address, [IPv6] or localhost, a colon, and a port from 0 to 65535" },
	{ "db", "BATCHNORMD_DB", "SQLite database path (default ./batchnormd.db)",
	  "a file path" },
	{ "threads", "BATCHNORMD_THREADS", "HTTP worker threads (default: the number of CPUs, at least 2)",
	  "an integer from 1 to 256" },
	{ "max-body-bytes", "BATCHNORMD_MAX_BODY_BYTES", "largest request body, bytes (default 83886080, 80 MiB)",
	  "a positive integer" },
	{ "max-elements", "BATCHNORMD_MAX_ELEMENTS", "largest input tensor, elements (default 16777216)",
	  "a positive integer" },
	{ "history-limit", "BATCHNORMD_HISTORY_LIMIT", "history entries kept per layer (default 1000)",
	  "an integer from 1 to 1000000" },
	{ "sync", "BATCHNORMD_SYNC", "full (power-loss durable, default) or normal (crash durable)",
	  "full or normal" },
	{ "token-file", "BATCHNORMD_TOKEN_FILE", "file holding the bearer token for changes (default: none)",
	  "a file path" },
	{ "max-layers", "BATCHNORMD_MAX_LAYERS", "most layers stored (default 10000)",
	  "an integer from 1 to 10000000" },
	{ "max-features", "BATCHNORMD_MAX_FEATURES", "largest num_features (default 65536)",
	  "an integer from 1 to 16777216" },
	{ "start-check", "BATCHNORMD_START_CHECK", "check the database before serving: quick (default), full or none",
	  "quick, full or none" },
	{ "max-memory", "BATCHNORMD_MAX_MEMORY", "memory budget for request bodies and answers, bytes; "
	  "past it 503 with Retry-After (default 536870912, 512 MiB)",
	  "an integer from 1048576 (1 MiB) up" },
	{ "history-bytes", "BATCHNORMD_HISTORY_BYTES", "history kept per layer, bytes, the oldest dropped; "
	  "an entry is 16 bytes per channel plus 64 (default 134217728, 128 MiB)",
	  "a positive integer" },
	{ "max-connections", "BATCHNORMD_MAX_CONNECTIONS",
	  "most connections at once (default 1000, lowered to fit the open-file limit)",
	  "an integer from 1 to 1000000" },
	{ "max-connections-per-client", "BATCHNORMD_MAX_CONNECTIONS_PER_CLIENT",
	  "most connections at once from one address (default: a quarter of --max-connections; "
	  "0: no cap, for a daemon behind a proxy)",
	  "an integer from 0 to 1000000" },
	{ "request-timeout", "BATCHNORMD_REQUEST_TIMEOUT",
	  "seconds to receive one whole request, headers and body (default 300)",
	  "an integer from 1 to 86400" },
	{ "commit-queue", "BATCHNORMD_COMMIT_QUEUE",
	  "changes waiting for or in a commit, at most; past it 503 with Retry-After (default 4096)",
	  "an integer from 1 to 1000000" },
	{ "max-import-layers", "BATCHNORMD_MAX_IMPORT_LAYERS", "most layers in one POST /v1/import (default 1000)",
	  "an integer from 1 to 100000" },
	{ "store", "BATCHNORMD_STORE", "where layers are kept: sqlite:PATH (default sqlite:./batchnormd.db; "
	  "--db PATH is its shorthand) or postgresql://... (a libpq URI, shared by several daemons)",
	  "sqlite:PATH, postgresql://... or postgres://..." },
	{ "store-password-file", "BATCHNORMD_STORE_PASSWORD_FILE",
	  "file holding the PostgreSQL password (default: the URI's, PGPASSWORD or PGPASSFILE)",
	  "a file path" },
	{ "fair-changes", "BATCHNORMD_FAIR_CHANGES",
	  "while other requests are served, changes run at most this many at once, the rest waiting "
	  "their turn (default: half of --threads, at least 1; 0: no limit)",
	  "an integer from 0 to 100000" },
	{ "store-workers", "BATCHNORMD_STORE_WORKERS",
	  "on PostgreSQL, threads that run the requests reaching the store (default 8, the connection pool's size)",
	  "an integer from 1 to 64" },
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: batchnormd [--FLAG VALUE | --FLAG=VALUE]... [--help] [--version]\n\n"
		"Keeps named BatchNorm layers' state in SQLite and runs their forward passes over HTTP.\n\n");
	for (size_t i = 0; i < N_FLAGS; i++) {
		/* A name too long for the column gets a line of its own. */
		if (strlen(flags[i].name) > 15)
			fprintf(out, "  --%s\n  %17s %s\n", flags[i].name, "", flags[i].help);
		else
			fprintf(out, "  --%-15s %s\n", flags[i].name, flags[i].help);
		fprintf(out, "  %17s env %s\n", "", flags[i].env);
	}
	fprintf(out, "\nThe database's own commands (batchnormd check --help says more):\n");
	bnd_commands_usage(out);
}

/* Parse a whole decimal number from lo to hi. */
static int parse_count(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_listen(struct bnd_options *o, const char *s)
{
	const char *colon = strrchr(s, ':');
	const char *host = s;
	size_t n;
	unsigned long long port;

	if (!colon || parse_count(colon + 1, 0, 65535, &port) < 0)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 9 && strncmp(host, "localhost", 9) == 0) {
		host = "127.0.0.1";
		n = 9;
	}
	if (n == 0 || n >= sizeof(o->host))
		return -EINVAL;
	memcpy(o->host, host, n);
	o->host[n] = '\0';
	o->port = (unsigned)port;
	return 0;
}

/* Apply one flag's value. Returns 0 or -EINVAL (the caller says which flag). */
static int apply(struct bnd_options *o, size_t i, const char *v)
{
	unsigned long long n;
	int rc = 0;

	switch (i) {
	case 0: return parse_listen(o, v);
	case 1: o->db_path = v; return *v ? 0 : -EINVAL;
	case 2: rc = parse_count(v, 1, 256, &n); o->threads = (unsigned)n; break;
	case 3: rc = parse_count(v, 1, SIZE_MAX / 2, &n); o->max_body_bytes = (size_t)n; break;
	case 4: rc = parse_count(v, 1, SIZE_MAX / 64, &n); o->max_elements = (size_t)n; break;
	case 5: rc = parse_count(v, 1, 1000000, &n); o->history_limit = (int64_t)n; break;
	case 6:
		if (strcmp(v, "full") && strcmp(v, "normal"))
			return -EINVAL;
		o->sync_full = strcmp(v, "full") == 0;
		return 0;
	case 7: o->token_file = v; return *v ? 0 : -EINVAL;
	case 8: rc = parse_count(v, 1, 10000000, &n); o->max_layers = (size_t)n; break;
	case 9: rc = parse_count(v, 1, 16777216, &n); o->max_features = (size_t)n; break;
	case 10:
		if (strcmp(v, "quick") && strcmp(v, "full") && strcmp(v, "none"))
			return -EINVAL;
		o->start_check = !strcmp(v, "none") ? -1 : !strcmp(v, "full") ? BND_CHECK_FULL : BND_CHECK_QUICK;
		return 0;
	case 11: rc = parse_count(v, 1u << 20, SIZE_MAX / 2, &n); o->max_memory = (size_t)n; break;
	case 12: rc = parse_count(v, 1, INT64_MAX, &n); o->history_bytes = (int64_t)n; break;
	case 13: rc = parse_count(v, 1, 1000000, &n); o->max_connections = (unsigned)n; break;
	case 14:
		rc = parse_count(v, 0, 1000000, &n);
		o->max_per_client = (unsigned)n;
		o->max_per_client_set = true;
		break;
	case 15: rc = parse_count(v, 1, 86400, &n); o->request_timeout = (unsigned)n; break;
	case 16: rc = parse_count(v, 1, 1000000, &n); o->commit_queue = (size_t)n; break;
	case 17: rc = parse_count(v, 1, 100000, &n); o->max_import_layers = (size_t)n; break;
	case 18: o->store_url = v; return *v ? 0 : -EINVAL;
	case 19: o->store_password_file = v; return *v ? 0 : -EINVAL;
	case 20:
		rc = parse_count(v, 0, 100000, &n);
		o->fair_changes = (unsigned)n;
		o->fair_changes_set = true;
		break;
	case 21: rc = parse_count(v, 1, 64, &n); o->store_workers = (unsigned)n; break;
	}
	return rc < 0 ? -EINVAL : 0;
}

static int parse_args(struct bnd_options *o, int argc, char **argv)
{
	for (size_t i = 0; i < N_FLAGS; i++) {
		const char *v = getenv(flags[i].env);

		if (v && apply(o, i, v) < 0) {
			fprintf(stderr, "batchnormd: bad value for %s: '%s'; expected %s\n",
					flags[i].env, v, flags[i].expect);
			return -EINVAL;
		}
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a], *v = NULL, *eq;
		size_t i, n;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(arg, "--version") == 0) {
			printf("batchnormd " VERSION "\n");
			exit(0);
		}
		eq = strchr(arg, '=');
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < N_FLAGS; i++)
			if (strncmp(arg, "--", 2) == 0 && n - 2 == strlen(flags[i].name) &&
			    strncmp(arg + 2, flags[i].name, n - 2) == 0)
				break;
		if (i == N_FLAGS) {
			fprintf(stderr, "batchnormd: unknown argument '%s' (see --help)\n", arg);
			return -EINVAL;
		}
		v = eq ? eq + 1 : a + 1 < argc ? argv[++a] : NULL;
		if (!v || apply(o, i, v) < 0) {
			fprintf(stderr, "batchnormd: bad value for --%s: '%s'; expected %s\n",
					flags[i].name, v ? v : "", flags[i].expect);
			return -EINVAL;
		}
	}
	return 0;
}

/* Read the bearer token: the file's content less trailing whitespace. */
static int read_token(struct bnd_daemon *d)
{
	char buf[4097];
	int n = bnd_read_secret_file("--token-file", d->opt.token_file, buf, sizeof(buf));

	if (n < 0)
		return n;
	d->token = strdup(buf);
	d->token_len = (size_t)n;
	return d->token ? 0 : -ENOMEM;
}

static int add_loaded(void *ud, const char *name, struct bnd_snapshot *snap)
{
	struct bnd_daemon *d = ud;
	struct bnd_layer *l;
	int rc = bnd_layer_create(name, snap, &l);

	if (rc < 0)
		return rc;
	/* Layers already stored are kept even past a lowered --max-layers. */
	d->registry.max = SIZE_MAX;
	rc = bnd_registry_add(&d->registry, l);
	d->registry.max = d->opt.max_layers;
	bnd_layer_unref(l);
	return rc;
}

static void defaults(struct bnd_options *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	*o = (struct bnd_options){
		.host = "127.0.0.1", .port = 8080, .db_path = "batchnormd.db",
		.threads = cpus < 2 ? 2 : cpus > 64 ? 64 : (unsigned)cpus,
		.max_body_bytes = 80u << 20, .max_elements = 1u << 24,
		.max_layers = 10000, .max_features = 65536, .history_limit = 1000, .max_import_layers = 1000,
		.history_bytes = (int64_t)128 << 20, .max_memory = (size_t)512 << 20,
		.sync_full = true, .start_check = BND_CHECK_QUICK,
		.max_connections = 1000, .request_timeout = 300, .commit_queue = 4096,
	};
}

/*
 * Raise the open-file limit to its hard limit, and lower --max-connections
 * (saying so) when even that cannot hold them all: a connection past it
 * would fail in accept() with nothing to shed it. Then the per-client cap
 * defaults to a quarter of what remains.
 */
static void fit_connections(struct bnd_options *o)
{
	/* stdio, the listening socket, each thread's epoll and wake-up descriptors, the database files */
	rlim_t spare = 64 + 4 * (rlim_t)o->threads;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
		rlim_t soft = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = soft;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)o->max_connections + spare) {
		unsigned fit = rl.rlim_cur > spare + 16 ? (unsigned)(rl.rlim_cur - spare) : 16;

		fprintf(stderr, "batchnormd: --max-connections lowered from %u to %u to fit the open-file "
			"limit of %llu (ulimit -n)\n", o->max_connections, fit, (unsigned long long)rl.rlim_cur);
		o->max_connections = fit;
	}
	if (!o->max_per_client_set)
		o->max_per_client = o->max_connections / 4 ? o->max_connections / 4 : 1;
}

/* Start the thread that commits every change. */
static int start_committer(struct bnd_daemon *d)
{
	struct bnd_commit_backend b;
	int rc;

	bnd_store_commit_backend(d->store, &b);
	rc = bnd_committer_create(&b, d->opt.commit_queue, &d->committer);
	if (rc < 0)
		fprintf(stderr, "batchnormd: cannot start the committer: %s\n", strerror(-rc));
	return rc;
}

/*
 * On a shared store, start the threads that run the requests reaching it:
 * --store-workers, by default one per connection of the store's pool, so
 * each holds its own (more share the pool's connections, waiting for one).
 */
static int start_store_workers(struct bnd_daemon *d)
{
	int rc;

	if (!bnd_store_shared(d->store))
		return 0;
	if (!d->opt.store_workers)
		d->opt.store_workers = bnd_store_connections(d->store);
	rc = bnd_store_workers_create(d->opt.store_workers, d->opt.commit_queue, &d->workers);
	if (rc < 0)
		fprintf(stderr, "batchnormd: cannot start the store workers: %s\n", strerror(-rc));
	return rc;
}

/* Serve until SIGTERM or SIGINT. */
static int serve(struct bnd_daemon *d, const sigset_t *stop)
{
	struct MHD_Daemon *mhd;
	unsigned port;
	int sig;

	mhd = bnd_http_start(d, &port);
	if (!mhd)
		return 1;
	printf(strchr(d->opt.host, ':') ? "listening on http://[%s]:%u\n" : "listening on http://%s:%u\n",
		d->opt.host, port);
	fflush(stdout);
	fprintf(stderr, "batchnormd %s: %zu layers from %s, %u threads, sync %s, memory budget %zu bytes%s\n",
		VERSION, bnd_registry_count(&d->registry), d->opt.db_path ? d->opt.db_path : "PostgreSQL", d->opt.threads,
		d->opt.sync_full ? "full" : "normal", d->opt.max_memory, d->token ? ", token required for changes" : "");
	if (bnd_store_shared(d->store))
		fprintf(stderr, "batchnormd: PostgreSQL: each change is its own transaction, on the row it locks; "
			"%u store workers, at most %zu requests waiting (--commit-queue)\n",
			d->opt.store_workers, d->opt.commit_queue);
	else
		fprintf(stderr, "batchnormd: group commit, at most %zu changes waiting (--commit-queue)\n",
			d->opt.commit_queue);
	if (d->opt.max_per_client)
		fprintf(stderr, "batchnormd: at most %u connections, %u from one address, %u s per request\n",
			d->opt.max_connections, d->opt.max_per_client, d->opt.request_timeout);
	else
		fprintf(stderr, "batchnormd: at most %u connections, any number from one address, %u s per request\n",
			d->opt.max_connections, d->opt.request_timeout);
	sigwait(stop, &sig);
	fprintf(stderr, "batchnormd: %s: finishing requests under way\n", strsignal(sig));
	bnd_http_stop(mhd, d, 30.0);
	return 0;
}

int main(int argc, char **argv)
{
	struct bnd_daemon d = { 0 };
	sigset_t stop;
	int rc = 1;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return bnd_command_check(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "backup") == 0)
		return bnd_command_backup(argc - 1, argv + 1);
	defaults(&d.opt);
	if (parse_args(&d.opt, argc, argv) < 0)
		return 2;
	if (d.opt.token_file && read_token(&d) < 0)
		return 2;
	if (bnd_store_options(&d.opt) < 0)
		return 2;
	fit_connections(&d.opt);
	if (!d.opt.fair_changes_set)
		d.opt.fair_changes = d.opt.threads / 2 ? d.opt.threads / 2 : 1;
	/* Block the stop signals in every thread, so only sigwait() sees them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	bnd_metrics_start(VERSION);
	bnd_budget_init(d.opt.max_memory);
	bnd_registry_init(&d.registry, d.opt.max_layers);
	if (d.opt.db_path && d.opt.start_check >= 0) {
		int checked = bnd_start_check(d.opt.db_path, d.opt.start_check);

		/* A damaged file gets a status of its own, so a supervisor need not retry it. */
		if (checked == -EUCLEAN)
			rc = BND_EXIT_START_DAMAGED;
		if (checked < 0)
			goto out;
	}
	rc = bnd_store_open(d.opt.store_url, d.opt.sync_full, &d.store);
	if (rc < 0) {
		rc = rc == -EINVAL ? 2 : 1;
		goto out;
	}
	rc = 1;
	if (bnd_store_load(d.store, add_loaded, &d) < 0) {
		fprintf(stderr, "batchnormd: could not load the layers from %s\n", bnd_store_backend(d.store));
		goto out;
	}
	if (start_committer(&d) < 0 || start_store_workers(&d) < 0)
		goto out;
	rc = serve(&d, &stop);
out:
	/* After the HTTP daemon (which stops them first), before the store. */
	bnd_store_workers_destroy(d.workers);
	bnd_committer_destroy(d.committer);
	bnd_registry_finish(&d.registry);
	bnd_store_close(d.store);
	free(d.token);
	if (rc == 0)
		fprintf(stderr, "batchnormd: stopped\n");
	return rc;
}
