/*
 * test_buf.c: lib/buf.c's cap, growth, sticky errors and steal.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn/buf.h"

static void test_append(void)
{
	struct bn_buf b;
	char big[1000];
	size_t len;
	char *p;

	bn_buf_init(&b, 0);
	assert(b.len == 0 && b.err == 0);
	assert(bn_buf_append(&b, "ab", 2) == 0 && b.len == 2 && strcmp(b.data, "ab") == 0);
	assert(bn_buf_puts(&b, "cd") == 0 && strcmp(b.data, "abcd") == 0);
	assert(bn_buf_printf(&b, "-%d-%s", 42, "x") == 0 && strcmp(b.data, "abcd-42-x") == 0);
	assert(bn_buf_append(&b, NULL, 0) == 0 && b.len == 9);
	/* Growth keeps what was written. */
	memset(big, 'z', sizeof(big));
	for (int i = 0; i < 100; i++)
		assert(bn_buf_append(&b, big, sizeof(big)) == 0);
	assert(b.len == 9 + 100 * sizeof(big) && b.cap > b.len && b.data[b.len] == '\0');
	assert(memcmp(b.data, "abcd-42-x", 9) == 0 && b.data[b.len - 1] == 'z');
	p = bn_buf_steal(&b, &len);
	assert(p && len == 9 + 100 * sizeof(big) && b.data == NULL && b.len == 0);
	free(p);
	/* Usable again after a steal, and steal of an empty buffer gives "". */
	p = bn_buf_steal(&b, &len);
	assert(p && len == 0 && p[0] == '\0');
	free(p);
	bn_buf_finish(&b);
}

static void test_cap(void)
{
	struct bn_buf b;
	size_t len;

	bn_buf_init(&b, 5);
	assert(bn_buf_append(&b, "abc", 3) == 0);
	assert(bn_buf_append(&b, "de", 2) == 0 && b.len == 5);
	/* One byte past the cap fails and stays failed, with the data as it was. */
	assert(bn_buf_append(&b, "f", 1) == -E2BIG && b.err == -E2BIG);
	assert(bn_buf_append(&b, "", 0) == -E2BIG);
	assert(bn_buf_puts(&b, "") == -E2BIG);
	assert(bn_buf_printf(&b, "%s", "") == -E2BIG);
	assert(bn_buf_reserve(&b, 0) == -E2BIG);
	assert(b.len == 5 && strcmp(b.data, "abcde") == 0);
	assert(bn_buf_steal(&b, &len) == NULL && b.err == -E2BIG);
	/* finish clears the error and keeps the cap. */
	bn_buf_finish(&b);
	assert(b.err == 0 && b.len == 0 && b.max == 5);
	assert(bn_buf_printf(&b, "%d", 123456) == -E2BIG && b.len == 0);
	bn_buf_finish(&b);
	assert(bn_buf_reserve(&b, 5) == 0 && b.cap >= 6);
	assert(bn_buf_reserve(&b, 6) == -E2BIG);
	bn_buf_finish(&b);
	/* A huge request is refused without wrapping around. */
	bn_buf_init(&b, 0);
	assert(bn_buf_append(&b, "x", 1) == 0);
	assert(bn_buf_reserve(&b, SIZE_MAX) == -E2BIG && b.err == -E2BIG);
	bn_buf_finish(&b);
	/* finish accepts a zeroed buffer. */
	b = (struct bn_buf){ 0 };
	bn_buf_finish(&b);
}

int main(void)
{
	test_append();
	test_cap();
	return 0;
}
