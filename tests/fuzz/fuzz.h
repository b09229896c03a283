/*
 * fuzz.h: what the libFuzzer targets in tests/fuzz/ share.
 *
 * Each target feeds one reader arbitrary bytes and checks the two promises
 * every reader here makes: what it accepts, written back with the project's
 * writer, reads back as the same value (floats bit for bit); what it
 * refuses leaves its output (or the object it was to change) exactly as it
 * was, with an error code and a NUL-terminated detail. A broken promise
 * aborts, which libFuzzer reports as a crash with the input that did it.
 */
#ifndef BN_FUZZ_H
#define BN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/error.h"

/* Abort with the place and the condition unless cond holds. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* A refusal says why: a code and a NUL-terminated, non-empty detail. */
#define FUZZ_CHECK_ERROR(err) \
	do { \
		FUZZ_CHECK((err)->code != NULL); \
		FUZZ_CHECK(memchr((err)->detail, '\0', sizeof((err)->detail)) != NULL); \
		FUZZ_CHECK((err)->detail[0] != '\0'); \
	} while (0)

/* The entry point libFuzzer calls; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
