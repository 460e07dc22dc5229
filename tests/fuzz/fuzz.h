/*
 * Helpers shared by the libFuzzer targets. A broken invariant aborts with
 * one line naming it, so libFuzzer keeps the input as a crash.
 */
#ifndef S3B_FUZZ_H
#define S3B_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* A NUL-terminated copy of the input (the parsers' C-string entries). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
