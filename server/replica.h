/*
 * replica.h: keeping the registry in step with a shared store.
 *
 * On PostgreSQL several daemons write the same layers, so a daemon's
 * registry is a cache of the layers table, never the truth. A request on a
 * layer first confirms the cached snapshot with one indexed query of the
 * row's id and version (bnd_replica_layer), reading the row again when it
 * moved, taking a layer another daemon created and dropping one it deleted.
 * A change then locks the row (SELECT ... FOR UPDATE) in the transaction
 * that writes it (bnd_replica_lock), so it computes from the stored state,
 * never a stale copy. On SQLite these are the plain registry look-ups.
 */
#ifndef BND_REPLICA_H
#define BND_REPLICA_H

#include "daemon.h"

/*
 * A reference to layer name, current as stored. -ENOENT when there is no
 * such layer, -EIO when the store cannot be reached, -ENOMEM.
 */
int bnd_replica_layer(struct bnd_daemon *d, const char *name, struct bnd_layer **ret);

/* Bring the whole registry in step with the layers table (for the list). -EIO, -ENOMEM. */
int bnd_replica_sync_all(struct bnd_daemon *d);

/*
 * With l's write_lock held: on a shared store lock l's row in this
 * thread's transaction and publish the row as stored when it differs. Ends
 * with bnd_store_unlock_layer (or the write's commit). -ENOENT when the
 * layer is gone (it is then dropped from the registry), -EIO. No-op on a
 * store that is not shared.
 */
int bnd_replica_lock(struct bnd_daemon *d, struct bnd_layer *l);

#endif
