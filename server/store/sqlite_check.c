/*
 * store/sqlite_check.c: PRAGMA quick_check / integrity_check on a database file,
 * and online backups with SQLite's backup API (store_check.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_check.h"

#define BACKUP_STEP_PAGES 64   /* 256 KiB a step with 4 KiB pages */
#define BUSY_PAUSE_MS 50
#define BUSY_MAX_WAITS 600     /* in a row, 30 s, before giving up */
#define OPEN_BUSY_TIMEOUT_MS 5000

static bool is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* Open the database at path for reading and writing, never creating it. 0, -ENOENT or -EIO. */
static int open_existing(const char *path, sqlite3 **ret)
{
	struct stat st;
	sqlite3 *db = NULL;

	if (stat(path, &st) < 0) {
		int err = -errno;

		if (err != -ENOENT)
			fprintf(stderr, "store: %s: %s\n", path, strerror(-err));
		return err == -ENOENT ? -ENOENT : -EIO;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "store: opening %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, OPEN_BUSY_TIMEOUT_MS);
	*ret = db;
	return 0;
}

/* The error for a failed statement: damage is -EUCLEAN (told to line), the rest -EIO (logged). */
static int check_failed(sqlite3 *db, const char *path, void (*line)(void *ud, const char *text), void *ud)
{
	if (is_corrupt(sqlite3_extended_errcode(db))) {
		line(ud, sqlite3_errmsg(db));
		return -EUCLEAN;
	}
	fprintf(stderr, "store: checking %s: %s\n", path, sqlite3_errmsg(db));
	return -EIO;
}

int bnd_store_check(const char *path, enum bnd_check_kind kind, unsigned max_problems,
		void (*line)(void *ud, const char *text), void *ud)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[64];
	int rc, step;
	unsigned rows = 0;
	bool ok = false;

	if (max_problems < 1 || max_problems > 10000)
		return -EINVAL;
	rc = open_existing(path, &db);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql), "PRAGMA %s(%u)", kind == BND_CHECK_FULL ? "integrity_check" : "quick_check",
		max_problems);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = check_failed(db, path, line, ud);
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);

		text = text ? text : "(null)";
		ok = rows == 0 && strcmp(text, "ok") == 0;
		rows++;
		line(ud, text);
	}
	if (step != SQLITE_DONE)
		rc = check_failed(db, path, line, ud);
	else
		rc = ok && rows == 1 ? 0 : -EUCLEAN;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* fsync the file or directory at path. 0 or -errno. */
static int sync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* The directory part of path into dir ("." when it has none). */
static void dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (!slash)
		snprintf(dir, size, ".");
	else if (n == 0)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)n, path);
}

/* Remove the temporary copy and whatever SQLite may have left beside it. */
static void remove_temp(const char *tmp)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", tmp, suffixes[i]);
		unlink(p);
	}
}

/* Refuse a dest that would be replaced without leave, or that has a log beside it. */
static int check_dest(const char *dest, bool overwrite)
{
	char side[PATH_MAX + 16];

	if (strlen(dest) + 16 > PATH_MAX) {
		fprintf(stderr, "backup: %s: the path is too long\n", dest);
		return -ENAMETOOLONG;
	}
	if (!overwrite && access(dest, F_OK) == 0) {
		fprintf(stderr, "backup: %s exists; give --force to replace it, or choose another name\n", dest);
		return -EEXIST;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", dest, i ? "-shm" : "-wal");
		if (access(side, F_OK) == 0) {
			fprintf(stderr, "backup: %s exists beside %s: SQLite would apply it to the copy; "
				"if nothing uses %s, remove %s-wal and %s-shm, or choose another name\n",
				side, dest, dest, dest, dest);
			return -EBUSY;
		}
	}
	return 0;
}

/* Copy every page of src into dst in steps, retrying busy or locked steps. 0, -EUCLEAN or -EIO. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, struct bnd_backup_stats *stats)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc, waits = 0;

	if (!b) {
		fprintf(stderr, "backup: starting the copy: %s\n", sqlite3_errmsg(dst));
		return -EIO;
	}
	for (;;) {
		rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
		stats->steps++;
		if (rc == SQLITE_OK) {
			waits = 0;
		} else if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waits < BUSY_MAX_WAITS) {
			waits++;
			stats->busy_waits++;
			sqlite3_sleep(BUSY_PAUSE_MS);
		} else {
			break;
		}
	}
	stats->pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (rc == SQLITE_DONE)
		return 0;
	fprintf(stderr, "backup: copying pages: %s%s\n", sqlite3_errstr(rc),
		rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? " (still busy after 30 s of retries)" : "");
	return is_corrupt(rc) ? -EUCLEAN : -EIO;
}

/*
 * Open src, hold a read transaction (the snapshot the copy is of) and copy
 * it into the existing empty file tmp. 0, -ENOENT, -EUCLEAN or -EIO.
 */
static int copy_to(const char *src_path, const char *tmp, struct bnd_backup_stats *stats)
{
	sqlite3 *src = NULL, *dst = NULL;
	int rc = open_existing(src_path, &src);

	if (rc < 0)
		return rc;
	if (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "backup: reading %s: %s\n", src_path, sqlite3_errmsg(src));
		rc = is_corrupt(sqlite3_extended_errcode(src)) ? -EUCLEAN : -EIO;
		goto out;
	}
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "backup: opening %s: %s\n", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
		rc = -EIO;
		goto out;
	}
	rc = copy_pages(src, dst, stats);
out:
	if (src && !sqlite3_get_autocommit(src))
		sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	if (dst && sqlite3_close(dst) != SQLITE_OK && rc == 0) {
		fprintf(stderr, "backup: closing %s: %s\n", tmp, sqlite3_errmsg(dst));
		rc = -EIO;
	}
	sqlite3_close(src);
	return rc;
}

static void log_problem(void *ud, const char *text)
{
	const char *tmp = ud;

	if (strcmp(text, "ok") != 0)
		fprintf(stderr, "backup: quick_check of %s: %s\n", tmp, text);
}

/* Move the checked copy tmp to dest: replacing it only when overwrite. 0 or -errno. */
static int publish(const char *tmp, const char *dest, bool overwrite)
{
	char dir[PATH_MAX];
	int rc = 0;

	if (overwrite) {
		if (rename(tmp, dest) < 0)
			rc = -errno;
	} else if (link(tmp, dest) < 0) {
		/* link() fails when dest appeared meanwhile: it is never replaced. */
		rc = -errno;
	} else {
		unlink(tmp);
	}
	if (rc < 0) {
		fprintf(stderr, "backup: moving %s to %s: %s\n", tmp, dest, strerror(-rc));
		return rc;
	}
	dir_of(dest, dir, sizeof(dir));
	rc = sync_path(dir, true);
	if (rc < 0)
		fprintf(stderr, "backup: syncing %s: %s\n", dir, strerror(-rc));
	return rc;
}

int bnd_store_backup(const char *src, const char *dest, bool overwrite,
		struct bnd_backup_stats *ret_stats)
{
	struct bnd_backup_stats stats = { 0 };
	char tmp[PATH_MAX];
	struct stat st;
	int fd, rc;

	rc = check_dest(dest, overwrite);
	if (rc < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dest);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		dir_of(dest, tmp, sizeof(tmp));
		fprintf(stderr, "backup: cannot create a file in %s: %s\n", tmp, strerror(-rc));
		return rc;
	}
	/* The copy is readable by whoever could read the original, no more. */
	if (stat(src, &st) == 0)
		fchmod(fd, st.st_mode & 0666);
	close(fd);
	rc = copy_to(src, tmp, &stats);
	if (rc == 0) {
		rc = sync_path(tmp, false);
		if (rc < 0)
			fprintf(stderr, "backup: syncing %s: %s\n", tmp, strerror(-rc));
	}
	if (rc == 0) {
		rc = bnd_store_check(tmp, BND_CHECK_QUICK, 5, log_problem, tmp);
		if (rc == -ENOENT)
			rc = -EIO;
	}
	if (rc == 0 && stat(tmp, &st) == 0)
		stats.bytes = (int64_t)st.st_size;
	if (rc == 0)
		rc = publish(tmp, dest, overwrite);
	if (rc < 0) {
		remove_temp(tmp);
		return rc;
	}
	if (ret_stats)
		*ret_stats = stats;
	return 0;
}
