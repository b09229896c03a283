/*
 * test_npz.c: lib/npz.c: the CRC-32 check value, and an archive whose
 * every header points where the zip format says (np.load's own check is in
 * the python suite, clients/python/tests).
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bn/npy.h"
#include "bn/npz.h"

static uint32_t rd(const char *p, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint32_t)(unsigned char)p[i] << (8 * i);
	return v;
}

int main(void)
{
	const char *check = "123456789";
	float data[6] = { 1, 2, 3, 4, 5, 6 };
	struct bn_tensor t = { .rank = 2, .shape = { 2, 3 }, .count = 6, .data = data };
	struct bn_buf a, b, z;
	struct bn_npz_member m[2];
	const char *eocd, *cd, *lh;

	/* The CRC-32 check value, whole and in two pieces. */
	assert(bn_crc32(0, check, 9) == 0xcbf43926u);
	assert(bn_crc32(bn_crc32(0, check, 4), check + 4, 5) == 0xcbf43926u);
	assert(bn_crc32(0, "", 0) == 0);

	bn_buf_init(&a, 0);
	bn_buf_init(&b, 0);
	bn_buf_init(&z, 0);
	assert(bn_npy_write(&a, &t) == 0);
	assert(bn_npy_write_i64(&b, -51) == 0);
	assert(b.len == 136 && (b.len - 8) % 64 == 0 && b.data[127] == '\n');
	assert(rd(b.data + 128, 4) == (uint32_t)-51 && rd(b.data + 132, 4) == 0xffffffffu);
	m[0] = (struct bn_npz_member){ "output", a.data, a.len };
	m[1] = (struct bn_npz_member){ "num_batches_tracked", b.data, b.len };
	assert(bn_npz_write(&z, m, 2) == 0);

	eocd = z.data + z.len - 22;
	assert(rd(eocd, 4) == 0x06054b50 && rd(eocd + 8, 2) == 2 && rd(eocd + 10, 2) == 2);
	cd = z.data + rd(eocd + 16, 4);
	assert(cd + rd(eocd + 12, 4) == eocd);
	for (int i = 0; i < 2; i++) {
		size_t nl = rd(cd + 28, 2);

		assert(rd(cd, 4) == 0x02014b50 && rd(cd + 10, 2) == 0); /* stored */
		lh = z.data + rd(cd + 42, 4);
		assert(rd(lh, 4) == 0x04034b50 && rd(lh + 26, 2) == nl && memcmp(lh + 30, cd + 46, nl) == 0);
		assert(rd(lh + 14, 4) == rd(cd + 16, 4)); /* the same CRC in both */
		assert(rd(lh + 14, 4) == bn_crc32(0, lh + 30 + nl, rd(lh + 18, 4)));
		assert(memcmp(lh + 30 + nl, i ? b.data : a.data, i ? b.len : a.len) == 0);
		assert(memcmp(cd + 46, i ? "num_batches_tracked.npy" : "output.npy", nl) == 0);
		cd += 46 + nl;
	}
	assert(cd == eocd);
	bn_buf_finish(&a);
	bn_buf_finish(&b);
	bn_buf_finish(&z);
	printf("npz: ok\n");
	return 0;
}
