/*
 * test_damaged.c: a damaged database is refused, reported and recoverable.
 *
 * A database with layers and history is made through the daemon. While a
 * daemon serves it and two threads train, `batchnormd backup` copies it:
 * the copy passes `batchnormd check` and, served, holds every layer and
 * every step acknowledged before the backup began; the trains go on
 * answering 200. A backup into a directory that does not exist, onto an
 * existing file without --force, or beside a stale -wal file is refused
 * with a message and a non-zero status.
 *
 * Then three of the history table's pages are overwritten with garbage:
 * the daemon refuses to start, saying what is wrong and what to do; with
 * --start-check none (or BATCHNORMD_START_CHECK=none) it starts, and once
 * a history read meets the damage /readyz answers 503 store_corrupt while
 * /livez stays 200. `batchnormd check` exits 1 on it, 0 on a good
 * database and 3 on a file that does not exist; `batchnormd backup` of it
 * fails its check of the copy and leaves no file behind.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define NF 64              /* channels: a history row is 1 KiB of statistics */
#define LAYERS 3
#define STEPS 40           /* train steps per layer before the backup */
#define MAX_ACKS 20000
#define CMD_TIMEOUT_MS 60000
#define GARBAGE_PAGES 3

static struct it_daemon d;   /* the database that is backed up, then damaged */
static struct it_daemon r;   /* the backup, restored and served */

static const char *const layer_names[LAYERS] = { "l0", "l1", "l2" };

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response resp;

	it_call(&d, method, path, body, &resp);
	CHECKF(resp.status == status, "%s %s: %ld, expected %ld: %.200s", method, path, resp.status, status,
			resp.body);
	it_response_finish(&resp);
}

/* A train body whose batch_mean[0] is k + 1: rows k, k + 1, k + 2 (plus the channel). */
static void train_body(char *buf, size_t size, int k)
{
	size_t n = (size_t)snprintf(buf, size, "{\"input\": [");

	for (int row = 0; row < 3; row++) {
		n += (size_t)snprintf(buf + n, size - n, "%s[", row ? ", " : "");
		for (int c = 0; c < NF; c++)
			n += (size_t)snprintf(buf + n, size - n, "%s%d.0", c ? ", " : "", k + row + c);
		n += (size_t)snprintf(buf + n, size - n, "]");
	}
	snprintf(buf + n, size - n, "]}");
}

/* ---- running the daemon's commands ---- */

struct cmd_result {
	int status;       /* the exit status; -1 when it died of a signal or hung */
	char out[8192];   /* the start of its stdout and stderr */
	char err[8192];
};

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, size - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run batchnormd with args (NULL-terminated) to completion, under a deadline. */
static void run(struct cmd_result *res, const char *const args[])
{
	const char *argv[16] = { d.exe };
	char out[256], err[256];
	size_t n = 1;
	int status = 0;
	pid_t pid;

	for (size_t i = 0; args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(out, sizeof(out), "%s/cmd.out", d.dir);
	snprintf(err, sizeof(err), "%s/cmd.err", d.dir);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	res->status = -1;
	if (!CHECKF(pid > 0, "fork: %s", strerror(errno)))
		return;
	for (int64_t deadline = mono_ms() + CMD_TIMEOUT_MS; waitpid(pid, &status, WNOHANG) == 0;) {
		if (mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			CHECKF(false, "batchnormd %s did not finish in %d ms", args[0], CMD_TIMEOUT_MS);
			break;
		}
		usleep(10000);
	}
	if (WIFEXITED(status))
		res->status = WEXITSTATUS(status);
	slurp(out, res->out, sizeof(res->out));
	slurp(err, res->err, sizeof(res->err));
	printf("$ batchnormd");
	for (size_t i = 1; i < n; i++)
		printf(" %s", argv[i]);
	printf("\n  exit %d\n  stdout: %.600s\n  stderr: %.1200s\n", res->status, res->out, res->err);
}

/* ---- the backup, taken while trains go on ---- */

struct ack {
	int layer;
	long long step;
	float mean;
};

static struct ack acks[MAX_ACKS];
static atomic_int nacks, bad_answers;
static atomic_bool stop_training;

static void *trainer(void *arg)
{
	int layer = (int)(intptr_t)arg;
	static char body[2][4096];
	char path[64];

	snprintf(path, sizeof(path), "/v1/layers/%s/train", layer_names[layer]);
	for (int k = 1000; !atomic_load(&stop_training); k++) {
		struct it_response resp;

		train_body(body[layer], sizeof(body[layer]), k);
		it_call(&d, "POST", path, body[layer], &resp);
		if (resp.status == 200) {
			int i = atomic_fetch_add(&nacks, 1);

			if (i < MAX_ACKS)
				acks[i] = (struct ack){ layer, json_integer_value(it_get(resp.json, "num_batches_tracked", NULL)),
					it_json_f32(json_array_get(it_get(resp.json, "batch_mean", NULL), 0)) };
		} else {
			atomic_fetch_add(&bad_answers, 1);
			CHECKF(false, "a train step during the backup answered %ld: %.200s", resp.status, resp.body);
		}
		it_response_finish(&resp);
	}
	return NULL;
}

static void wait_acks(int n)
{
	for (int64_t deadline = mono_ms() + 60000; atomic_load(&nacks) < n && mono_ms() < deadline;)
		usleep(5000);
}

/* Whether layer's history, read from the daemon x, has step with batch_mean[0] == mean. */
static bool history_has(const struct it_daemon *x, const char *layer, long long step, float mean)
{
	struct it_response resp;
	char path[128];
	bool found;

	snprintf(path, sizeof(path), "/v1/layers/%s/history?after=%lld&limit=1", layer, step - 1);
	it_call(x, "GET", path, NULL, &resp);
	json_t *e = json_array_get(it_get(resp.json, "steps", NULL), 0);
	found = resp.status == 200 && e && json_integer_value(json_object_get(e, "step")) == step &&
		it_same_f32(it_json_f32(json_array_get(json_object_get(e, "batch_mean"), 0)), mean);
	it_response_finish(&resp);
	return found;
}

static void test_backup_while_training(void)
{
	pthread_t threads[2];
	struct cmd_result res;
	int before, missing = 0;

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&threads[i], NULL, trainer, (void *)(intptr_t)i) == 0);
	wait_acks(20);
	before = atomic_load(&nacks); /* acks[0..before) were answered before the backup began */
	run(&res, (const char *[]){ "backup", r.db, "--db", d.db, NULL });
	CHECKF(res.status == 0 && !strncmp(res.out, "ok", 2), "backup while serving: exit %d", res.status);
	wait_acks(atomic_load(&nacks) + 10); /* the daemon still commits after the backup */
	atomic_store(&stop_training, true);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	printf("train steps acknowledged: %d before the backup, %d in all, %d not 200\n", before,
			atomic_load(&nacks), atomic_load(&bad_answers));

	run(&res, (const char *[]){ "check", "--db", r.db, NULL });
	CHECKF(res.status == 0 && !strcmp(res.out, "ok\n"), "check of the backup: exit %d, '%s'", res.status, res.out);
	if (!CHECKF(it_daemon_start(&r, NULL) == 0, "batchnormd did not start on the backup"))
		return;
	for (int l = 0; l < LAYERS; l++)
		for (int s = 1; s <= STEPS; s++)
			missing += !history_has(&r, layer_names[l], s, (float)(s + 1));
	for (int i = 0; i < before && i < MAX_ACKS; i++)
		missing += !history_has(&r, layer_names[acks[i].layer], acks[i].step, acks[i].mean);
	CHECKF(missing == 0, "%d of %d steps acknowledged before the backup are not in it", missing,
			LAYERS * STEPS + before);
	CHECKF(it_daemon_stop(&r) == 0, "batchnormd on the backup did not exit 0");
}

static void test_backup_refusals(void)
{
	struct cmd_result res;
	char dest[256], side[300];
	struct stat before, after;

	snprintf(dest, sizeof(dest), "%s/no-such-dir/copy.db", d.dir);
	run(&res, (const char *[]){ "backup", dest, "--db", d.db, NULL });
	CHECKF(res.status != 0 && strstr(res.err, "no-such-dir") && strstr(res.err, "No such file"),
			"backup into a missing directory: exit %d, stderr '%s'", res.status, res.err);
	CHECK(access(dest, F_OK) < 0);

	/* An existing file is kept unless --force. */
	CHECK(stat(r.db, &before) == 0);
	run(&res, (const char *[]){ "backup", r.db, "--db", d.db, NULL });
	CHECKF(res.status != 0 && strstr(res.err, "exists") && strstr(res.err, "--force"),
			"backup onto an existing file: exit %d, stderr '%s'", res.status, res.err);
	CHECK(stat(r.db, &after) == 0 && after.st_ino == before.st_ino && after.st_size == before.st_size);
	run(&res, (const char *[]){ "backup", r.db, "--db", d.db, "--force", NULL });
	CHECKF(res.status == 0, "backup --force onto an existing file: exit %d", res.status);

	/* A stale log beside DEST would be applied to the copy when it is opened. */
	snprintf(dest, sizeof(dest), "%s/beside.db", d.dir);
	snprintf(side, sizeof(side), "%s-wal", dest);
	FILE *f = fopen(side, "w");
	CHECK(f && fputs("stale", f) >= 0 && fclose(f) == 0);
	run(&res, (const char *[]){ "backup", dest, "--db", d.db, NULL });
	CHECKF(res.status != 0 && strstr(res.err, "-wal"), "backup beside a -wal file: exit %d", res.status);
	CHECK(access(dest, F_OK) < 0);
	unlink(side);

	snprintf(dest, sizeof(dest), "%s/copy.db", d.dir);
	run(&res, (const char *[]){ "backup", dest, "--db", "/nonexistent/layers.db", NULL });
	CHECKF(res.status == 3, "backup of a database that does not exist: exit %d, expected 3", res.status);
	CHECK(access(dest, F_OK) < 0);
}

/* ---- the damage ---- */

/* The page numbers of the history table's leaves, from dbstat; 0 when they cannot be listed. */
static size_t history_pages(const char *path, long long *pages, size_t max)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT pageno FROM dbstat WHERE name = 'history' AND pagetype = 'leaf' "
			"ORDER BY pageno", -1, &st, NULL) == SQLITE_OK)
		while (n < max && sqlite3_step(st) == SQLITE_ROW)
			pages[n++] = sqlite3_column_int64(st, 0);
	else
		printf("dbstat: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Overwrite GARBAGE_PAGES history leaves in the middle of the file with pseudo-random bytes. */
static bool damage(const char *path)
{
	long long pages[512];
	unsigned char hdr[100], junk[65536];
	uint32_t x = 2463534242u;
	size_t n = history_pages(path, pages, 512);
	int fd = open(path, O_RDWR);
	bool done = fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr);
	size_t page_size = (size_t)hdr[16] << 8 | hdr[17];

	if (page_size == 1)
		page_size = 65536;
	done = done && n >= GARBAGE_PAGES + 2 && page_size >= 512;
	for (size_t i = 0; done && i < GARBAGE_PAGES; i++) {
		long long p = pages[n / 2 + i];

		for (size_t b = 0; b < page_size; b++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			junk[b] = (unsigned char)x;
		}
		done = pwrite(fd, junk, page_size, (off_t)(p - 1) * (off_t)page_size) == (ssize_t)page_size;
		printf("overwrote page %lld (of %zu history leaves, %zu-byte pages) with garbage\n", p, n, page_size);
	}
	if (fd >= 0)
		close(fd);
	return CHECKF(done, "could not damage %s (%zu history leaves)", path, n);
}

/* GET every layer's whole history; how many answered 503 (and were problems). */
static int read_histories(void)
{
	int failed = 0;

	for (int l = 0; l < LAYERS; l++) {
		struct it_response resp;
		char path[128];

		snprintf(path, sizeof(path), "/v1/layers/%s/history?limit=1000", layer_names[l]);
		it_call(&d, "GET", path, NULL, &resp);
		if (resp.status == 503) {
			it_check_problem(&resp, 503, "store_unavailable", path);
			failed++;
		} else {
			CHECKF(resp.status == 200, "GET %s: %ld", path, resp.status);
		}
		it_response_finish(&resp);
	}
	return failed;
}

static void test_refused(void)
{
	struct cmd_result res;

	if (it_daemon_start(&d, NULL) == 0) {
		struct it_response resp;

		it_call(&d, "GET", "/readyz", NULL, &resp);
		CHECKF(false, "batchnormd started on a damaged database, and GET /readyz answered %ld", resp.status);
		it_response_finish(&resp);
		int failed = read_histories();
		it_call(&d, "GET", "/readyz", NULL, &resp);
		printf("on the damaged database: %d of %d history reads answered 503, then GET /readyz %ld\n",
				failed, LAYERS, resp.status);
		it_response_finish(&resp);
		it_daemon_stop(&d);
		return;
	}
	run(&res, (const char *[]){ "--listen", "127.0.0.1:0", "--db", d.db, NULL });
	CHECKF(res.status == 4, "start on a damaged database: exit %d, expected 4", res.status);
	CHECKF(strstr(res.err, "damaged") && strstr(res.err, "quick_check") && strstr(res.err, "btreeInitPage"),
			"the refusal does not say what is wrong: '%s'", res.err);
	CHECKF(strstr(res.err, "batchnormd check") && strstr(res.err, "backup") &&
			strstr(res.err, "--start-check none"), "the refusal does not say what to do: '%s'", res.err);
	CHECKF(!strstr(res.out, "listening"), "it listened: %s", res.out);
}

static void test_served_anyway(void)
{
	const char *none[] = { "--start-check", "none", NULL };
	struct it_response resp;
	struct cmd_result res;

	if (!CHECKF(it_daemon_start(&d, none) == 0, "batchnormd --start-check none did not start"))
		return;
	int failed = read_histories();
	CHECKF(failed > 0, "no history read met the damaged pages");
	it_call(&d, "GET", "/readyz", NULL, &resp);
	it_check_problem(&resp, 503, "store_corrupt", "GET /readyz after a read met the damage");
	printf("GET /readyz after %d history reads failed: %ld %.300s\n", failed, resp.status, resp.body);
	it_response_finish(&resp);
	it_call(&d, "GET", "/livez", NULL, &resp);
	CHECKF(resp.status == 200, "GET /livez: %ld", resp.status);
	it_response_finish(&resp);
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");

	/* The variable does the same; a bad value is told what was expected. */
	setenv("BATCHNORMD_START_CHECK", "none", 1);
	CHECKF(it_daemon_start(&d, NULL) == 0, "BATCHNORMD_START_CHECK=none did not start");
	unsetenv("BATCHNORMD_START_CHECK");
	if (d.pid)
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	run(&res, (const char *[]){ "--start-check", "sometimes", "--db", d.db, NULL });
	CHECKF(res.status == 2 && strstr(res.err, "quick, full or none"), "--start-check sometimes: exit %d",
			res.status);
}

/* How many files in dir have names starting with prefix. */
static int count_files(const char *dir, const char *prefix)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (dh && (e = readdir(dh)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	if (dh)
		closedir(dh);
	return n;
}

static void test_check(void)
{
	struct cmd_result res;
	char missing[256];

	run(&res, (const char *[]){ "check", "--db", d.db, NULL });
	CHECKF(res.status == 1 && res.out[0] && strcmp(res.out, "ok\n"), "check of the damaged database: exit %d",
			res.status);
	/* A copy of damage is no backup: refused, and nothing left behind. */
	snprintf(missing, sizeof(missing), "%s/copy.db", d.dir);
	run(&res, (const char *[]){ "backup", missing, "--db", d.db, NULL });
	CHECKF(res.status == 1 && strstr(res.err, "quick_check"), "backup of the damaged database: exit %d",
			res.status);
	CHECKF(access(missing, F_OK) < 0, "a failed backup left %s", missing);
	CHECKF(count_files(d.dir, "copy.db") == 0, "a failed backup left a temporary file in %s", d.dir);
	snprintf(missing, sizeof(missing), "%s/missing.db", d.dir);
	run(&res, (const char *[]){ "check", "--db", missing, NULL });
	CHECKF(res.status == 3, "check of a file that does not exist: exit %d, expected 3", res.status);
	CHECK(access(missing, F_OK) < 0);
}

static void build(void)
{
	char body[4096], path[64];

	for (int l = 0; l < LAYERS; l++) {
		snprintf(path, sizeof(path), "/v1/layers/%s", layer_names[l]);
		ok("PUT", path, "{\"num_features\": 64}", 201);
		snprintf(path, sizeof(path), "/v1/layers/%s/train", layer_names[l]);
		for (int s = 1; s <= STEPS; s++) {
			train_body(body, sizeof(body), s);
			ok("POST", path, body, 200);
		}
	}
}

int main(int argc, char **argv)
{
	struct cmd_result res;
	char wal[160];

	/* Damaged files, check and backup are SQLite's: PostgreSQL keeps its own. */
	if (it_skip_on_pg("damaged database files, batchnormd check and backup are SQLite's"))
		return 77;
	if (it_daemon_init(&d, argc, argv) < 0 || it_daemon_init(&r, argc, argv) < 0)
		return 77;
	if (!CHECKF(it_daemon_start(&d, NULL) == 0, "batchnormd did not start"))
		goto out;
	build();
	test_backup_while_training();
	test_backup_refusals();
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");

	run(&res, (const char *[]){ "check", "--db", d.db, NULL });
	CHECKF(res.status == 0 && !strcmp(res.out, "ok\n"), "check of the good database: exit %d", res.status);
	/* Stopped cleanly, everything is in the main file: no log to bring the pages back. */
	snprintf(wal, sizeof(wal), "%s-wal", d.db);
	CHECKF(access(wal, F_OK) < 0, "%s is still there after a clean stop", wal);
	if (damage(d.db)) {
		test_refused();
		test_served_anyway();
		test_check();
	}
out:
	it_daemon_finish(&d);
	it_daemon_finish(&r);
	return it_exit_status("http_damaged");
}
