/*
 * store/dispatch.c: the public store functions (store.h,
 * store_calibration.h) on top of the backend's operations (store/ops.h):
 * choosing the backend from the store URL, and the transactions each
 * request writes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

const char *bnd_store_backend(const struct bnd_store *s)
{
	return s->ops->name;
}

int bnd_store_load(struct bnd_store *s,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud)
{
	return s->ops->load(s, add, ud);
}

int bnd_store_begin(struct bnd_store *s)
{
	return s->ops->begin(s);
}

int bnd_store_commit(struct bnd_store *s)
{
	return s->ops->commit(s);
}

void bnd_store_rollback(struct bnd_store *s)
{
	s->ops->rollback(s);
}

/* Finish a transaction begun at t0: commit when rc is 0, else roll back. */
static int finish(struct bnd_store *s, int rc, double t0)
{
	if (rc == 0)
		rc = s->ops->commit(s);
	else
		s->ops->rollback(s);
	bnd_metrics_commit(bnd_metrics_clock() - t0);
	return rc;
}

int bnd_store_insert(struct bnd_store *s, const char *name, struct bnd_snapshot *snap)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	return finish(s, s->ops->insert(s, name, snap), t0);
}

int bnd_store_update(struct bnd_store *s, const struct bnd_snapshot *snap)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	return finish(s, s->ops->update(s, snap), t0);
}

int64_t bnd_store_history_entry_bytes(const struct bnd_history_entry *h)
{
	return (int64_t)h->num_features * (h->running_mean ? 16 : 8) + BND_HISTORY_ENTRY_OVERHEAD;
}

int bnd_store_train(struct bnd_store *s, const struct bnd_snapshot *snap,
		const struct bnd_history_entry *h, int64_t keep, int64_t keep_bytes)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	rc = s->ops->update(s, snap);
	if (rc == 0)
		rc = s->ops->history_add(s, snap->id, h, keep, keep_bytes);
	return finish(s, rc, t0);
}

int bnd_store_import(struct bnd_store *s, struct bnd_store_import_row *rows, size_t n)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = rows[i].insert ? s->ops->insert(s, rows[i].name, rows[i].snap) :
			s->ops->update(s, rows[i].snap);
	return finish(s, rc, t0);
}

int bnd_store_delete(struct bnd_store *s, int64_t id)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	return finish(s, s->ops->remove(s, id), t0);
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
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	return finish(s, s->ops->calibration_put(s, layer_id, c, now_ms), t0);
}

int bnd_store_calibration_delete(struct bnd_store *s, int64_t layer_id)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	return finish(s, s->ops->calibration_delete(s, layer_id), t0);
}

int bnd_store_calibration_commit(struct bnd_store *s, const struct bnd_snapshot *snap)
{
	double t0 = bnd_metrics_clock();
	int rc = s->ops->begin(s);

	if (rc < 0)
		return rc;
	rc = s->ops->update(s, snap);
	if (rc == 0)
		rc = s->ops->calibration_delete(s, snap->id);
	return finish(s, rc, t0);
}

int bnd_store_lock_layer(struct bnd_store *s, int64_t id, struct bnd_snapshot **ret)
{
	int rc;

	if (!s->ops->lock_layer) {
		*ret = NULL;
		return 0;
	}
	rc = s->ops->begin(s);
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
