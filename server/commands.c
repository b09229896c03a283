/*
 * commands.c: `batchnormd check`, `batchnormd backup`, and the start-up
 * check of the database (commands.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"

#define START_PROBLEMS 5      /* problems quick_check looks for before a refused start */
#define CHECK_PROBLEMS 100    /* and `batchnormd check` (SQLite's own default) */

/* What a command was given. */
struct command_args {
	const char *db;
	const char *dest;
	bool force;
};

void bnd_commands_usage(FILE *out)
{
	fprintf(out, "  batchnormd check [--db PATH]\n"
		"  batchnormd backup DEST [--db PATH] [--force]\n");
}

static void command_help(FILE *out)
{
	fprintf(out, "usage: batchnormd check [--db PATH]\n"
		"       batchnormd backup DEST [--db PATH] [--force]\n\n"
		"check: run PRAGMA integrity_check on the database and print \"ok\" or what is wrong.\n"
		"backup: copy the database, safely while batchnormd serves it, to DEST (through a\n"
		"  temporary file beside it, checked before it is moved into place); --force\n"
		"  replaces an existing DEST.\n"
		"--db PATH defaults to $BATCHNORMD_DB, else ./batchnormd.db.\n"
		"Exit status: 0 ok, 1 damaged or failed, 2 bad arguments, 3 the database cannot be opened.\n");
}

/* Parse a command's arguments; with_dest: backup's DEST and --force. 0, or an exit status. */
static int parse_command(int argc, char **argv, bool with_dest, struct command_args *a)
{
	const char *env = getenv("BATCHNORMD_DB");

	*a = (struct command_args){ .db = env && *env ? env : "batchnormd.db" };
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			command_help(stdout);
			exit(0);
		} else if (strcmp(arg, "--db") == 0 || strncmp(arg, "--db=", 5) == 0) {
			a->db = arg[4] ? arg + 5 : i + 1 < argc ? argv[++i] : "";
			if (!*a->db) {
				fprintf(stderr, "batchnormd %s: --db needs the database's path\n", argv[0]);
				return BND_EXIT_USAGE;
			}
		} else if (with_dest && strcmp(arg, "--force") == 0) {
			a->force = true;
		} else if (with_dest && !a->dest && *arg && strncmp(arg, "--", 2) != 0) {
			a->dest = arg;
		} else {
			fprintf(stderr, "batchnormd %s: unexpected argument '%s'; expected %s\n", argv[0], arg,
				with_dest ? "DEST, --db PATH and --force" : "--db PATH");
			return BND_EXIT_USAGE;
		}
	}
	if (with_dest && !a->dest) {
		fprintf(stderr, "batchnormd %s: expected the backup's path: batchnormd backup DEST [--db PATH]\n",
			argv[0]);
		return BND_EXIT_USAGE;
	}
	return 0;
}

/* The lines SQLite reported, kept for the refusal message. */
struct report {
	char lines[START_PROBLEMS][512];
	unsigned n;
};

static void keep_line(void *ud, const char *text)
{
	struct report *r = ud;

	if (r->n < START_PROBLEMS)
		snprintf(r->lines[r->n++], sizeof(r->lines[0]), "%s", text);
}

/* Write text indented, each of its own lines too. */
static void put_indented(FILE *out, const char *text)
{
	fputs("  ", out);
	for (const char *p = text; *p; p++) {
		fputc(*p, out);
		if (*p == '\n' && p[1])
			fputs("  ", out);
	}
	fputc('\n', out);
}

int bnd_start_check(const char *path, enum bnd_check_kind kind)
{
	const char *pragma = kind == BND_CHECK_FULL ? "integrity_check" : "quick_check";
	struct report r = { .n = 0 };
	struct timespec t0, t1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = bnd_store_check(path, kind, START_PROBLEMS, keep_line, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0) {
		fprintf(stderr, "batchnormd: PRAGMA %s on %s: ok (%.0f ms)\n", pragma, path,
			(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
		return 0;
	}
	if (rc != -EUCLEAN) {
		fprintf(stderr, "batchnormd: refusing to start: could not run PRAGMA %s on %s (see above)\n",
			pragma, path);
		return rc;
	}
	fprintf(stderr, "batchnormd: refusing to start: the database %s is damaged; PRAGMA %s reported:\n",
		path, pragma);
	for (unsigned i = 0; i < r.n; i++)
		put_indented(stderr, r.lines[i]);
	fprintf(stderr, "batchnormd: what to do: run `batchnormd check --db %s` for the full report, then stop "
		"anything using the file and restore the latest backup (README: \"Damaged databases and "
		"backups\"). To start on it anyway and serve what is still readable, give --start-check none.\n",
		path);
	return rc;
}

static void print_line(void *ud, const char *text)
{
	(void)ud;
	printf("%s\n", text);
}

int bnd_command_check(int argc, char **argv)
{
	struct command_args a;
	int rc = parse_command(argc, argv, false, &a);

	if (rc)
		return rc;
	rc = bnd_store_check(a.db, BND_CHECK_FULL, CHECK_PROBLEMS, print_line, NULL);
	fflush(stdout);
	if (rc == 0)
		return 0;
	if (rc == -EUCLEAN) {
		fprintf(stderr, "batchnormd check: %s is damaged (above: what PRAGMA integrity_check reported); "
			"restore the latest backup (README: \"Damaged databases and backups\")\n", a.db);
		return BND_EXIT_DAMAGED;
	}
	fprintf(stderr, "batchnormd check: cannot open %s: %s\n", a.db,
		rc == -ENOENT ? "no such file" : "see above");
	return BND_EXIT_UNREADABLE;
}

int bnd_command_backup(int argc, char **argv)
{
	struct bnd_backup_stats stats;
	struct command_args a;
	int rc = parse_command(argc, argv, true, &a);

	if (rc)
		return rc;
	if (access(a.db, F_OK) < 0) {
		fprintf(stderr, "batchnormd backup: cannot open the database %s: %s\n", a.db, strerror(errno));
		return BND_EXIT_UNREADABLE;
	}
	rc = bnd_store_backup(a.db, a.dest, a.force, &stats);
	if (rc < 0) {
		fprintf(stderr, "batchnormd backup: no backup written to %s (%s)\n", a.dest,
			rc == -EUCLEAN ? "the database or its copy is damaged" : strerror(-rc));
		return rc == -ENOENT && access(a.db, F_OK) < 0 ? BND_EXIT_UNREADABLE : BND_EXIT_DAMAGED;
	}
	printf("ok: %s copied to %s (%lld pages in %lld steps, %lld bytes, quick_check ok)\n", a.db, a.dest,
		(long long)stats.pages, (long long)stats.steps, (long long)stats.bytes);
	return 0;
}
