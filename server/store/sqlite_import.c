/*
 * store_import.c: a whole model's layers written in one transaction (store.h).
 */
#include "metrics.h"
#include "store/sqlite_internal.h"

int bnd_store_import(struct bnd_store *s, struct bnd_store_import_row *rows, size_t n)
{
	double t0 = bnd_metrics_clock();
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = store_exec(s, ST_BEGIN, "beginning an import");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = rows[i].insert ? store_insert_locked(s, rows[i].name, rows[i].snap) :
			store_update_locked(s, rows[i].snap);
	if (rc == 0)
		rc = store_exec(s, ST_COMMIT, "committing an import");
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		store_exec(s, ST_ROLLBACK, "rolling back an import");
	pthread_mutex_unlock(&s->lock);
	bnd_metrics_commit(bnd_metrics_clock() - t0);
	return rc;
}
