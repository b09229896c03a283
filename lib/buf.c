/*
 * buf.c: the growable, capped byte buffer of bn/buf.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/buf.h"

void bn_buf_init(struct bn_buf *b, size_t max)
{
	*b = (struct bn_buf){ .max = max ? max : SIZE_MAX - 1 };
}

void bn_buf_finish(struct bn_buf *b)
{
	size_t max = b->max;

	free(b->data);
	*b = (struct bn_buf){ .max = max };
}

static int fail(struct bn_buf *b, int r)
{
	if (!b->err)
		b->err = r;
	return r;
}

int bn_buf_reserve(struct bn_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > b->max - b->len)
		return fail(b, -E2BIG);
	need = b->len + n + 1; /* room for the NUL */
	if (need <= b->cap)
		return 0;
	/* Grow geometrically so appending N bytes costs O(N) in all. */
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return fail(b, -ENOMEM);
	b->data = p;
	b->cap = cap;
	return 0;
}

int bn_buf_append(struct bn_buf *b, const void *p, size_t n)
{
	int r = bn_buf_reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int bn_buf_puts(struct bn_buf *b, const char *s)
{
	return bn_buf_append(b, s, strlen(s));
}

int bn_buf_printf(struct bn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	if (b->err)
		return b->err;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, -EINVAL);
	r = bn_buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *bn_buf_steal(struct bn_buf *b, size_t *ret_len)
{
	char *p;

	if (b->err)
		return NULL;
	if (!b->data) {
		if (bn_buf_reserve(b, 0) < 0)
			return NULL;
		b->data[0] = '\0'; /* an empty buffer still gives a string */
	}
	p = b->data;
	*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
