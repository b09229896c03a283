/*
 * secret_file.h: reading a secret (a bearer token, a store password) from
 * the file a flag names.
 */
#ifndef BND_SECRET_FILE_H
#define BND_SECRET_FILE_H

#include <stddef.h>

/*
 * Read the file at path into buf (size bytes, the secret at most size - 2
 * bytes), less its trailing whitespace, NUL-terminated. The secret must be
 * text (no NUL) of at least one byte. Returns its length, or -EINVAL after
 * saying on stderr, naming flag ("--token-file"), what was wrong.
 */
int bnd_read_secret_file(const char *flag, const char *path, char *buf, size_t size);

#endif
