/*
 * store/options.c: turning --store, --db and --store-password-file into
 * the store URL the daemon opens (store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "secret_file.h"
#include "store.h"

/* Read the password file (less trailing whitespace) into PGPASSWORD, which libpq reads. */
static int read_password(const char *path)
{
	char buf[1026];
	int n = bnd_read_secret_file("--store-password-file", path, buf, sizeof(buf));

	if (n < 0)
		return n;
	return setenv("PGPASSWORD", buf, 1) == 0 ? 0 : -ENOMEM;
}

int bnd_store_options(struct bnd_options *o)
{
	const struct bnd_store_ops *ops;
	const char *target;

	if (!o->store_url) {
		int n = snprintf(o->store_url_buf, sizeof(o->store_url_buf), "sqlite:%s", o->db_path);

		if (n < 0 || (size_t)n >= sizeof(o->store_url_buf)) {
			fprintf(stderr, "batchnormd: --db: the path is over 4096 bytes\n");
			return -EINVAL;
		}
		o->store_url = o->store_url_buf;
	}
	if (bnd_store_parse_url(o->store_url, &ops, &target) < 0) {
		fprintf(stderr, "batchnormd: bad value for --store (or BATCHNORMD_STORE): '%.200s'; expected "
			"sqlite:PATH, postgresql://... or postgres://...\n", o->store_url);
		return -EINVAL;
	}
	o->db_path = strncmp(o->store_url, "sqlite:", 7) == 0 ? target : NULL;
	if (o->store_password_file)
		return read_password(o->store_password_file);
	return 0;
}
