/*
 * fuzz_config.c: the PUT /v1/layers/{name} config body (server/codec_read.c).
 *
 * Accepted: a valid config, which written with bnd_config_write and read
 * again is the same config, eps and momentum bit for bit. Refused: the
 * output config was not written, and the error says why.
 */
#include <errno.h>

#include "codec.h"
#include "fuzz.h"
#include "fuzz_codec.h"

#define MAX_FEATURES 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_config cfg, sentinel, again;
	struct bn_error err = { 0 };
	struct bn_buf out;
	int r;

	memset(&cfg, 0xa5, sizeof(cfg));
	sentinel = cfg;
	r = bnd_config_parse((const char *)data, size, MAX_FEATURES, &cfg, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -ENOMEM);
		FUZZ_CHECK(memcmp(&cfg, &sentinel, sizeof(cfg)) == 0);
		FUZZ_CHECK_ERROR(&err);
		return 0;
	}
	FUZZ_CHECK(bn_config_check(&cfg, MAX_FEATURES, NULL) == 0);
	bn_buf_init(&out, 0);
	bnd_config_write(&out, &cfg);
	FUZZ_CHECK(out.err == 0);
	r = bnd_config_parse(out.data, out.len, MAX_FEATURES, &again, &err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(fuzz_same_config(&cfg, &again));
	bn_buf_finish(&out);
	return 0;
}
