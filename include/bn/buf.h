/*
 * bn/buf.h: a growable byte buffer with a hard cap.
 *
 * Writers append freely; the first failure (over the cap, or out of memory)
 * is remembered in buf->err and every later append is a no-op, so a writer
 * checks once at the end. The cap is what keeps a response from growing
 * without bound (curl's dynbuf carries its own toobig the same way).
 */
#ifndef BN_BUF_H
#define BN_BUF_H

#include <stddef.h>

struct bn_buf {
	char *data;   /* NUL-terminated after every successful append */
	size_t len;
	size_t cap;   /* bytes allocated */
	size_t max;   /* the most len may become */
	int err;      /* 0, or the first -E2BIG / -ENOMEM */
};

/* An empty buffer that may hold up to max bytes (0: no cap but SIZE_MAX). */
void bn_buf_init(struct bn_buf *b, size_t max);

/* Free the data; b is empty and usable again. Accepts a zeroed buffer. */
void bn_buf_finish(struct bn_buf *b);

/* Append n bytes. Returns 0, -E2BIG past max, -ENOMEM; b->err keeps the first. */
int bn_buf_append(struct bn_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. Same returns as bn_buf_append. */
int bn_buf_puts(struct bn_buf *b, const char *s);

/* Append printf-formatted text (locale as set; use it for integers and text only). */
int bn_buf_printf(struct bn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Make sure n more bytes fit without reallocating. Same returns. */
int bn_buf_reserve(struct bn_buf *b, size_t n);

/*
 * Take the data: returns it (caller frees) and its length in *ret_len,
 * leaving b empty. Returns NULL when b->err is set (b keeps its error).
 */
char *bn_buf_steal(struct bn_buf *b, size_t *ret_len);

#endif
