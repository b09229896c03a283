/*
 * store/postgresql_wire.c: statement parameters and result columns in
 * libpq's binary format (big-endian integers and doubles), and arrays as
 * bytea of little-endian float32 or float64, the bytes SQLite keeps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgresql_internal.h"

/* The type oids of pg_type, fixed by PostgreSQL. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

static void put_word(struct pg_params *p, uint64_t u, int len, Oid type)
{
	int i = p->n++;

	for (int b = 0; b < len; b++)
		p->word[i][b] = (unsigned char)(u >> (8 * (len - 1 - b)));
	p->v[i] = (const char *)p->word[i];
	p->len[i] = len;
	p->fmt[i] = 1;
	p->type[i] = type;
}

void pg_i64(struct pg_params *p, int64_t v)
{
	put_word(p, (uint64_t)v, 8, OID_INT8);
}

void pg_f64(struct pg_params *p, double v)
{
	uint64_t u;

	memcpy(&u, &v, 8);
	put_word(p, u, 8, OID_FLOAT8);
}

void pg_bool(struct pg_params *p, bool v)
{
	put_word(p, v ? 1 : 0, 1, OID_BOOL);
}

void pg_text(struct pg_params *p, const char *v)
{
	int i = p->n++;

	p->v[i] = v;
	p->len[i] = (int)strlen(v);
	p->fmt[i] = 1;
	p->type[i] = OID_TEXT;
}

void pg_null(struct pg_params *p, Oid type)
{
	int i = p->n++;

	p->v[i] = NULL;
	p->len[i] = 0;
	p->fmt[i] = 1;
	p->type[i] = type ? type : OID_BYTEA;
}

/* n values of width bytes each, little-endian, from the words at v. */
static void put_array(struct pg_params *p, const void *v, size_t n, size_t width)
{
	const unsigned char *src = v;
	unsigned char *blob;
	int i;

	if (!v) {
		pg_null(p, OID_BYTEA);
		return;
	}
	blob = malloc(n > 0 ? n * width : 1);
	if (!blob) {
		p->nomem = true;
		pg_null(p, OID_BYTEA);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		uint64_t u = 0;

		if (width == 4) {
			uint32_t w;

			memcpy(&w, src + k * 4, 4);
			u = w;
		} else {
			memcpy(&u, src + k * 8, 8);
		}
		for (size_t b = 0; b < width; b++)
			blob[k * width + b] = (unsigned char)(u >> (8 * b));
	}
	i = p->n++;
	p->owned[i] = blob;
	p->v[i] = (const char *)blob;
	p->len[i] = (int)(n * width);
	p->fmt[i] = 1;
	p->type[i] = OID_BYTEA;
}

void pg_floats(struct pg_params *p, const float *v, size_t n)
{
	put_array(p, v, n, 4);
}

void pg_doubles(struct pg_params *p, const double *v, size_t n)
{
	put_array(p, v, n, 8);
}

void pg_params_free(struct pg_params *p)
{
	for (int i = 0; i < p->n; i++) {
		free(p->owned[i]);
		p->owned[i] = NULL;
	}
}

static uint64_t get_word(const PGresult *r, int row, int col, int len)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
	uint64_t u = 0;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != len)
		return 0;
	for (int b = 0; b < len; b++)
		u = u << 8 | v[b];
	return u;
}

int64_t pg_col_i64(const PGresult *r, int row, int col)
{
	return (int64_t)get_word(r, row, col, 8);
}

double pg_col_f64(const PGresult *r, int row, int col)
{
	uint64_t u = get_word(r, row, col, 8);
	double d;

	memcpy(&d, &u, 8);
	return d;
}

bool pg_col_bool(const PGresult *r, int row, int col)
{
	return get_word(r, row, col, 1) != 0;
}

/* Read n little-endian words of width bytes from a bytea into out. */
static int get_array(const PGresult *r, int row, int col, size_t n, size_t width, void *out)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
	unsigned char *dst = out;

	if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != n * width)
		return -EIO;
	for (size_t k = 0; k < n; k++) {
		uint64_t u = 0;

		for (size_t b = 0; b < width; b++)
			u |= (uint64_t)v[k * width + b] << (8 * b);
		if (width == 4) {
			uint32_t w = (uint32_t)u;

			memcpy(dst + k * 4, &w, 4);
		} else {
			memcpy(dst + k * 8, &u, 8);
		}
	}
	return 0;
}

int pg_col_floats(const PGresult *r, int row, int col, size_t n, float **ret)
{
	float *v = malloc(n * sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	rc = get_array(r, row, col, n, 4, v);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*ret = v;
	return 0;
}

int pg_col_doubles(const PGresult *r, int row, int col, size_t n, double *out)
{
	return get_array(r, row, col, n, 8, out);
}
