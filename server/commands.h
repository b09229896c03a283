/*
 * commands.h: `batchnormd check` and `batchnormd backup`, and the check the
 * daemon runs on its database before it serves.
 *
 * The commands' exit statuses: 0 done (the database is ok, the backup is in
 * place), 1 the database is damaged or the backup failed, 2 bad arguments,
 * 3 the database file cannot be opened (missing, unreadable).
 */
#ifndef BND_COMMANDS_H
#define BND_COMMANDS_H

#include <stdio.h>

#include "store_check.h"

/* Exit statuses of the check and backup commands. */
#define BND_EXIT_DAMAGED 1
#define BND_EXIT_USAGE 2
#define BND_EXIT_UNREADABLE 3
/* The daemon itself, when its start check finds the database damaged. */
#define BND_EXIT_START_DAMAGED 4

/*
 * Run kind's check on the database at path before the daemon opens it. A
 * missing file passes (the daemon creates it). Returns 0 when it passes;
 * otherwise says on stderr what is wrong, the first lines SQLite reported
 * and what to do, and returns -EUCLEAN (damaged) or -EIO (unreadable).
 */
int bnd_start_check(const char *path, enum bnd_check_kind kind);

/* Usage lines for the commands, for --help. */
void bnd_commands_usage(FILE *out);

/*
 * `batchnormd check [--db PATH]`: argv[0] is "check". Prints what
 * PRAGMA integrity_check reports ("ok" or the problems) on stdout. Returns
 * the exit status.
 */
int bnd_command_check(int argc, char **argv);

/*
 * `batchnormd backup DEST [--db PATH] [--force]`: argv[0] is "backup".
 * Copies the database to DEST (bnd_store_backup), says so on stdout, and
 * returns the exit status.
 */
int bnd_command_backup(int argc, char **argv);

#endif
