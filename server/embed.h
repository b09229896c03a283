/*
 * embed.h: files compiled into the daemon by the build-time tool embed.c
 * (the schema migrations and the dashboard).
 */
#ifndef BND_EMBED_H
#define BND_EMBED_H

#include <stddef.h>

struct bnd_file {
	const char *name;          /* the file's base name */
	const unsigned char *data; /* len bytes, followed by a NUL not counted in len */
	size_t len;
	const char *etag;          /* a quoted strong validator from the content's hash */
};

extern const struct bnd_file bnd_migrations_sqlite[];
extern const size_t bnd_migrations_sqlite_count;
extern const struct bnd_file bnd_migrations_postgresql[];
extern const size_t bnd_migrations_postgresql_count;
extern const struct bnd_file bnd_dashboard[];
extern const size_t bnd_dashboard_count;
extern const struct bnd_file bnd_openapi[];
extern const size_t bnd_openapi_count;

#endif
