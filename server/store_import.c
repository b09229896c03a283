/*
 * store_import.c: a whole model's layers written in the committer's open
 * transaction (store.h).
 */
#include "store_internal.h"

int bnd_store_import(struct bnd_store *s, struct bnd_store_import_row *rows, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = rows[i].insert ? bnd_store_insert(s, rows[i].name, rows[i].snap) :
			bnd_store_update(s, rows[i].snap);
	return rc;
}
