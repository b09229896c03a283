/*
 * fuzz_patch.c: the PATCH /v1/layers/{name} body (server/codec_read.c).
 *
 * The first byte picks the layer's config (bit 0: momentum null, bit 1:
 * no affine, bit 2: no running stats; num_features 1 + (byte >> 3) % 4);
 * the rest is the body. Accepted: the patched config is valid, only eps
 * and momentum changed, and written with bnd_config_write and read again
 * it is the same, bit for bit. Refused: the config is exactly as it was.
 */
#include <errno.h>

#include "codec.h"
#include "fuzz.h"
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_config cfg, before, again;
	struct bn_error err = { 0 };
	struct bn_buf out;
	int r;

	if (size < 1)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	bn_config_default(&cfg, 1 + (size_t)(data[0] >> 3) % 4);
	cfg.cumulative = data[0] & 1;
	cfg.affine = !(data[0] & 2);
	cfg.track_running_stats = !(data[0] & 4);
	before = cfg;
	r = bnd_config_patch((const char *)data + 1, size - 1, &cfg, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -ENOMEM);
		FUZZ_CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0);
		FUZZ_CHECK_ERROR(&err);
		return 0;
	}
	FUZZ_CHECK(bn_config_check(&cfg, cfg.num_features, NULL) == 0);
	FUZZ_CHECK(cfg.num_features == before.num_features && cfg.affine == before.affine &&
		cfg.track_running_stats == before.track_running_stats);
	bn_buf_init(&out, 0);
	bnd_config_write(&out, &cfg);
	FUZZ_CHECK(out.err == 0);
	r = bnd_config_parse(out.data, out.len, cfg.num_features, &again, &err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(fuzz_same_config(&cfg, &again));
	bn_buf_finish(&out);
	return 0;
}
