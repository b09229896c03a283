/*
 * store_calibration.h: a layer's open calibration in the store (the
 * calibration table of migrations/0002_calibration.sql).
 *
 * A calibration is one row per layer, deleted with the layer (ON DELETE
 * CASCADE). The writes are made in the committer's open transaction
 * (store.h, commit.h), like every other change, so a crash leaves the
 * calibration as the last acknowledged change made it. The read sees what
 * is committed, through the read connection.
 */
#ifndef BND_STORE_CALIBRATION_H
#define BND_STORE_CALIBRATION_H

#include <stdint.h>

#include "bn/stats.h"
#include "store.h"

/* Times of a stored calibration, Unix milliseconds. */
struct bnd_calibration_times {
	int64_t created_ms, updated_ms;
};

/*
 * Read layer_id's calibration into a new *ret (num_features channels; the
 * caller finishes it) and its times into *times (may be NULL). -ENOENT when
 * the layer has none, -EIO (a row of the wrong size too), -ENOMEM.
 */
int bnd_store_calibration_get(struct bnd_store *s, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times);

/* In the open transaction: write c as layer_id's calibration (creating it at now_ms if new). -EIO, -ENOMEM. */
int bnd_store_calibration_put(struct bnd_store *s, int64_t layer_id, const struct bn_calibration *c,
		int64_t now_ms);

/* In the open transaction: delete layer_id's calibration, if it has one. -EIO. */
int bnd_store_calibration_delete(struct bnd_store *s, int64_t layer_id);

/*
 * In the open transaction: write snap (the layer with its calibrated
 * running stats) and delete its calibration. -EIO, -ENOMEM.
 */
int bnd_store_calibration_commit(struct bnd_store *s, const struct bnd_snapshot *snap);

#endif
