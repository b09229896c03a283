/*
 * secret_file.c: a secret read from a file (secret_file.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "secret_file.h"

int bnd_read_secret_file(const char *flag, const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "batchnormd: %s %s: %s\n", flag, path, strerror(errno));
		return -EINVAL;
	}
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	/* size - 1 bytes read: the file may hold more than fits. */
	if (n == 0 || n == size - 1 || strlen(buf) != n) {
		fprintf(stderr, "batchnormd: %s %s: the secret must be 1 to %zu bytes of text\n", flag, path,
			size - 2);
		return -EINVAL;
	}
	return (int)n;
}
