/*
 * store_check.h: checking a database file for damage, and copying it while
 * a daemon serves it.
 *
 * Both work on a path, on a connection of their own, never creating the
 * database: the daemon runs the check before it opens its store, and the
 * `batchnormd check` and `batchnormd backup` commands run them on their own.
 * Like the rest of the store they log the cause of a failure to stderr
 * (SQLite's message or strerror) and return a negative errno.
 */
#ifndef BND_STORE_CHECK_H
#define BND_STORE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

/* Which PRAGMA bnd_store_check runs. */
enum bnd_check_kind {
	BND_CHECK_QUICK, /* quick_check: every page and b-tree, O(pages); not index against table */
	BND_CHECK_FULL,  /* integrity_check: also that every index matches its table */
};

/*
 * Run kind's PRAGMA on the existing database at path, asking SQLite for at
 * most max_problems problems (1 to 10000), and call line(ud, text) with each
 * line it reports ("ok" alone when nothing is wrong).
 *
 * Returns 0 when SQLite said "ok"; -EUCLEAN when it reported problems or a
 * statement failed with SQLITE_CORRUPT or SQLITE_NOTADB (its message is then
 * passed to line); -ENOENT when path does not exist; -EIO when the file could
 * not be opened or read for another reason (logged). The file is not changed,
 * except that SQLite may fold in a write-ahead log left by a crash.
 */
int bnd_store_check(const char *path, enum bnd_check_kind kind, unsigned max_problems,
		void (*line)(void *ud, const char *text), void *ud);

struct bnd_backup_stats {
	int64_t pages;      /* pages copied */
	int64_t steps;      /* sqlite3_backup_step calls */
	int64_t bytes;      /* the copy's size */
	int64_t busy_waits; /* steps retried because the database was busy or locked */
};

/*
 * Copy the database at src to dest with SQLite's online backup API, safe
 * while a daemon serves src in WAL mode: the copy holds one read transaction
 * on src from start to end, so it is src as of the moment it began, and the
 * daemon keeps committing meanwhile. Pages are copied in steps; a step that
 * finds the database busy or locked is retried after a pause. The copy is
 * written to a temporary file beside dest, synced, checked with quick_check,
 * and only then moved to dest (and the directory synced).
 *
 * dest is never replaced unless overwrite. Returns 0 (with *ret_stats set
 * when ret_stats is not NULL); -ENOENT when src does not exist; -EEXIST when
 * dest exists and !overwrite; -EBUSY when a dest-wal or dest-shm file lies
 * beside dest (SQLite would apply it to the copy); -EUCLEAN when src or the
 * copy is damaged; another -errno (-ENOENT, -EACCES, ...) when the temporary
 * file cannot be made beside dest; -EIO. On an error before the move dest
 * is as it was; on any error the temporary file is removed. Every failure
 * is logged.
 */
int bnd_store_backup(const char *src, const char *dest, bool overwrite,
		struct bnd_backup_stats *ret_stats);

#endif
