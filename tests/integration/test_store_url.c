/*
 * test_store_url.c: choosing the store: --store, BATCHNORMD_STORE, --db as
 * the shorthand of sqlite:PATH, --store-password-file; a bad URL or an
 * unreadable password file is a clear message and exit status 2; on
 * PostgreSQL, a database whose schema is newer than the binary is refused.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static struct it_daemon d;

/* Run batchnormd with args (a shell fragment of quoted words, the test's own) to its end. */
static int run(const char *env, const char *args, char *err, size_t size)
{
	char cmd[8192];
	size_t n = 0;
	FILE *p;
	int status;

	snprintf(cmd, sizeof(cmd), "%s timeout 30 '%s' --listen 127.0.0.1:0 %s 2>&1 >/dev/null", env, d.exe, args);
	p = popen(cmd, "r");
	if (!CHECKF(p != NULL, "popen %s", cmd))
		return -1;
	n = fread(err, 1, size - 1, p);
	err[n] = '\0';
	status = pclose(p);
	printf("$ %s\n  exit %d: %.300s\n", cmd, WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_bad_urls(void)
{
	char err[4096];

	CHECK(run("", "--store mysql://db/x", err, sizeof(err)) == 2 &&
		strstr(err, "expected sqlite:PATH, postgresql://... or postgres://..."));
	CHECK(run("BATCHNORMD_STORE=batchnormd.db", "", err, sizeof(err)) == 2 && strstr(err, "BATCHNORMD_STORE"));
	CHECK(run("", "--store sqlite:", err, sizeof(err)) == 2);
	CHECK(run("", "--store 'postgresql://%zz'", err, sizeof(err)) == 2 &&
		strstr(err, "not a PostgreSQL connection URI"));
	CHECK(run("", "--store postgresql://127.0.0.1/x --store-password-file /nonexistent/pw", err,
		sizeof(err)) == 2 && strstr(err, "--store-password-file"));
}

/* --store sqlite:PATH puts the layers in PATH. */
static void test_sqlite_url(void)
{
	char url[256], path[200];
	struct it_response r;
	struct stat st;
	struct it_daemon s;

	if (it_skip_on_pg("sqlite:PATH starts a SQLite daemon") || it_daemon_init(&s, 2, (char *[]){ "", d.exe, NULL }) < 0)
		return;
	snprintf(path, sizeof(path), "%s/chosen.db", s.dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (CHECKF(it_daemon_start(&s, (const char *[]){ "--store", url, NULL }) == 0, "--store %s", url)) {
		it_call(&s, "PUT", "/v1/layers/a", "{\"num_features\": 2}", &r);
		CHECK(r.status == 201);
		it_response_finish(&r);
		CHECK(it_daemon_stop(&s) == 0);
	}
	CHECKF(stat(path, &st) == 0 && st.st_size > 0, "%s was not written", path);
	it_daemon_finish(&s);
}

/* PostgreSQL: a database migrated by a newer batchnormd is refused at start. */
static void test_newer_schema(void)
{
	char err[4096], args[700];

	if (!it_store_pg())
		return;
	CHECK(it_daemon_start(&d, NULL) == 0);
	CHECK(it_daemon_stop(&d) == 0);
	CHECK(it_pg_sql(&d, "UPDATE batchnormd_schema SET version = 99", NULL) == 0);
	snprintf(args, sizeof(args), "--store '%s'", d.store);
	CHECK(run("", args, err, sizeof(err)) == 1 && strstr(err, "newer than this batchnormd"));
}

int main(int argc, char **argv)
{
	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	test_bad_urls();
	test_sqlite_url();
	test_newer_schema();
	it_daemon_finish(&d);
	return it_exit_status("http_store_url");
}
