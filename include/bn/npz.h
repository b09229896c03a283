/*
 * bn/npz.h: NumPy .npz archives, written in memory.
 *
 * An .npz is a zip file of .npy members named "<key>.npy", which np.load
 * opens as a mapping from key to array. This writes what np.savez writes:
 * every member stored (no compression) with its CRC-32, a central
 * directory, and no zip64 (so every member and the whole archive stay
 * under 4 GiB; -E2BIG otherwise).
 */
#ifndef BN_NPZ_H
#define BN_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "bn/buf.h"

struct bn_npz_member {
	const char *key;    /* the array's name, without ".npy" */
	const void *npy;    /* a whole .npy file */
	size_t len;
};

/* The CRC-32 (ISO-HDLC, as zip and zlib use) of p[0..n), continuing from crc (0 to start). */
uint32_t bn_crc32(uint32_t crc, const void *p, size_t n);

/* Append an .npz of the n members, in order, to out. Returns out's error state, or -E2BIG. */
int bn_npz_write(struct bn_buf *out, const struct bn_npz_member *m, size_t n);

#endif
