/*
 * npz.c: .npz archives, a minimal zip writer (bn/npz.h).
 *
 * The layout (PKWARE APPNOTE 4.3): for each member a local file header
 * (signature 0x04034b50) then its bytes; then one central directory header
 * (0x02014b50) per member pointing back at its local header; then the end
 * of central directory record (0x06054b50). All integers little-endian.
 * Members are stored (method 0), dated 1980-01-01 00:00 (the zip epoch),
 * so the same arrays always give the same bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bn/npz.h"

#define ZIP_VERSION 20   /* 2.0: what stored members need */
#define DOS_DATE 0x0021  /* 1980-01-01 */

uint32_t bn_crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;

	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= b[i];
		for (int k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void le16(struct bn_buf *out, uint32_t v)
{
	unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };

	bn_buf_append(out, b, 2);
}

static void le32(struct bn_buf *out, uint32_t v)
{
	le16(out, v & 0xffff);
	le16(out, v >> 16);
}

/* The fields local and central headers share, from "version needed" to the name's length. */
static void common(struct bn_buf *out, uint32_t crc, size_t len, size_t name_len)
{
	le16(out, ZIP_VERSION);
	le16(out, 0);          /* flags */
	le16(out, 0);          /* stored */
	le16(out, 0);          /* time */
	le16(out, DOS_DATE);
	le32(out, crc);
	le32(out, (uint32_t)len);
	le32(out, (uint32_t)len);
	le16(out, (uint32_t)name_len);
}

int bn_npz_write(struct bn_buf *out, const struct bn_npz_member *m, size_t n)
{
	size_t start = out->len, total = 0, cd, cd_len;
	uint32_t offsets[64], crcs[64];
	char name[80];

	if (n > 64)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (strlen(m[i].key) > sizeof(name) - 5 || m[i].len > UINT32_MAX - total)
			return -E2BIG;
		total += m[i].len + 30 + 46 + 2 * (strlen(m[i].key) + 4);
	}
	if (total > UINT32_MAX - 22)
		return -E2BIG;
	bn_buf_reserve(out, total + 22);
	for (size_t i = 0; i < n; i++) {
		size_t nl = (size_t)snprintf(name, sizeof(name), "%s.npy", m[i].key);

		offsets[i] = (uint32_t)(out->len - start);
		crcs[i] = bn_crc32(0, m[i].npy, m[i].len);
		le32(out, 0x04034b50);
		common(out, crcs[i], m[i].len, nl);
		le16(out, 0);      /* extra field length */
		bn_buf_append(out, name, nl);
		bn_buf_append(out, m[i].npy, m[i].len);
	}
	cd = out->len - start;
	for (size_t i = 0; i < n; i++) {
		size_t nl = (size_t)snprintf(name, sizeof(name), "%s.npy", m[i].key);

		le32(out, 0x02014b50);
		le16(out, ZIP_VERSION); /* made by: MS-DOS attributes, 2.0 */
		common(out, crcs[i], m[i].len, nl);
		le16(out, 0);      /* extra */
		le16(out, 0);      /* comment */
		le16(out, 0);      /* disk */
		le16(out, 0);      /* internal attributes */
		le32(out, 0);      /* external attributes */
		le32(out, offsets[i]);
		bn_buf_append(out, name, nl);
	}
	cd_len = out->len - start - cd;
	le32(out, 0x06054b50);
	le16(out, 0);
	le16(out, 0);
	le16(out, (uint32_t)n);
	le16(out, (uint32_t)n);
	le32(out, (uint32_t)cd_len);
	le32(out, (uint32_t)cd);
	le16(out, 0);
	return out->err;
}
