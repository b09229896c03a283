/*
 * store/dispatch.c: the public store functions (store.h,
 * store_calibration.h) on top of the backend's operations (store/ops.h):
 * choosing the backend from the store URL, the transaction primitives
 * (with the commit test hooks and the commit-time metric) and the writes
 * that run inside a transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "store/ops.h"

int bnd_store_parse_url(const char *url, const struct bnd_store_ops **ret_ops, const char **ret_target)
{
	if (strncmp(url, "sqlite:", 7) == 0 && url[7]) {
		*ret_ops = &bnd_store_sqlite_ops;
		*ret_target = url + 7;
		return 0;
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		*ret_ops = &bnd_store_postgresql_ops;
		*ret_target = url;
		return 0;
	}
	return -EINVAL;
}

int bnd_store_open(const char *url, bool sync_full, struct bnd_store **ret)
{
	const struct bnd_store_ops *ops;
	const char *target;

	if (bnd_store_parse_url(url, &ops, &target) < 0) {
		fprintf(stderr, "store: %s is not a store URL: use sqlite:PATH or postgresql://...\n", url);
		return -EINVAL;
	}
	return ops->open(target, sync_full, ret);
}

void bnd_store_close(struct bnd_store *s)
{
	if (s)
		s->ops->close(s);
}

bool bnd_store_shared(const struct bnd_store *s)
{
	return s->ops->shared;
}

unsigned bnd_store_connections(const struct bnd_store *s)
{
	return s->ops->connections;
}

const char *bnd_store_backend(const struct bnd_store *s)
{
	return s->ops->name;
}

int bnd_store_load(struct bnd_store *s,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud)
{
	return s->ops->load(s, add, ud);
}

/* When this thread's transaction began, for the commit-time metric. */
static _Thread_local double tx_started;

int bnd_store_begin(struct bnd_store *s)
{
	tx_started = bnd_metrics_clock();
	return s->ops->begin(s);
}

/* Whether the test hook's file exists (store.h). */
static bool hook_on(const char *path)
{
	return path && access(path, F_OK) == 0;
}

/*
 * Whether the fail hook fails this commit: its file holds a count of
 * commits to fail (counted down, and the file removed at the last), or
 * no count: every commit fails while it exists.
 */
static bool hook_fail(const char *path)
{
	char buf[32], *end;
	size_t len;
	long n;
	FILE *f;

	if (!path || !(f = fopen(path, "r")))
		return false;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	n = strtol(buf, &end, 10);
	if (end == buf)
		return true;
	if (n <= 1) {
		remove(path);
	} else if ((f = fopen(path, "w"))) {
		fprintf(f, "%ld\n", n - 1);
		fclose(f);
	}
	return n >= 1;
}

int bnd_store_commit(struct bnd_store *s)
{
	static const struct timespec tick = { 0, 5 * 1000 * 1000 };
	const char *fail_path = getenv("BATCHNORMD_TEST_FAIL_COMMIT");
	int rc;

	while (hook_on(getenv("BATCHNORMD_TEST_HOLD_COMMIT")))
		nanosleep(&tick, NULL);
	if (hook_fail(fail_path)) {
		fprintf(stderr, "store: committing: failed on purpose (%s exists)\n", fail_path);
		s->ops->rollback(s);
		rc = -EIO;
	} else {
		rc = s->ops->commit(s);
	}
	bnd_metrics_commit(bnd_metrics_clock() - tx_started);
	return rc;
}

void bnd_store_rollback(struct bnd_store *s)
{
	s->ops->rollback(s);
	bnd_metrics_commit(bnd_metrics_clock() - tx_started);
}

int bnd_store_insert(struct bnd_store *s, const char *name, struct bnd_snapshot *snap)
{
	return s->ops->insert(s, name, snap);
}

int bnd_store_update(struct bnd_store *s, const struct bnd_snapshot *snap)
{
	return s->ops->update(s, snap);
}

int64_t bnd_store_history_entry_bytes(const struct bnd_history_entry *h)
{
	return (int64_t)h->num_features * (h->running_mean ? 16 : 8) + BND_HISTORY_ENTRY_OVERHEAD;
}

int bnd_store_train(struct bnd_store *s, const struct bnd_snapshot *snap,
		const struct bnd_history_entry *h, int64_t keep, int64_t keep_bytes)
{
	int rc = s->ops->update(s, snap);

	return rc < 0 ? rc : s->ops->history_add(s, snap->id, h, keep, keep_bytes);
}

int bnd_store_delete(struct bnd_store *s, int64_t id)
{
	return s->ops->remove(s, id);
}

int bnd_store_history(struct bnd_store *s, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more)
{
	return s->ops->history(s, id, num_features, after, limit, row, ud, ret_more);
}

int bnd_store_ping(struct bnd_store *s)
{
	return s->ops->ping(s);
}

int bnd_store_calibration_get(struct bnd_store *s, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times)
{
	return s->ops->calibration_get(s, layer_id, num_features, ret, times);
}

int bnd_store_calibration_put(struct bnd_store *s, int64_t layer_id, const struct bn_calibration *c,
		int64_t now_ms)
{
	return s->ops->calibration_put(s, layer_id, c, now_ms);
}

int bnd_store_calibration_delete(struct bnd_store *s, int64_t layer_id)
{
	return s->ops->calibration_delete(s, layer_id);
}

int bnd_store_calibration_commit(struct bnd_store *s, const struct bnd_snapshot *snap)
{
	int rc = s->ops->update(s, snap);

	return rc < 0 ? rc : s->ops->calibration_delete(s, snap->id);
}

int bnd_store_lock_layer(struct bnd_store *s, int64_t id, struct bnd_snapshot **ret)
{
	int rc;

	if (!s->ops->lock_layer) {
		*ret = NULL;
		return 0;
	}
	rc = bnd_store_begin(s);
	if (rc < 0)
		return rc;
	rc = s->ops->lock_layer(s, id, ret);
	if (rc < 0)
		s->ops->rollback(s);
	return rc;
}

void bnd_store_unlock_layer(struct bnd_store *s)
{
	if (s->ops->in_transaction && s->ops->in_transaction(s))
		s->ops->rollback(s);
}

int bnd_store_layer_version(struct bnd_store *s, const char *name, int64_t *ret_id, int64_t *ret_version)
{
	return s->ops->layer_version ? s->ops->layer_version(s, name, ret_id, ret_version) : -ENOSYS;
}

int bnd_store_layer_read(struct bnd_store *s, const char *name, struct bnd_snapshot **ret)
{
	return s->ops->layer_read ? s->ops->layer_read(s, name, ret) : -ENOSYS;
}

int64_t bnd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
