/*
 * check.h: the unit tests' few macros. Each test program counts its checks
 * and ends with "N passed, N failed"; tests/unit/run.sh adds them up.
 */
#ifndef S3B_CHECK_H
#define S3B_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do {						\
	if (cond)							\
		check_passed++;						\
	else {								\
		check_failed++;						\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
	}								\
} while (0)

#define CHECK_STREQ(a, b) do {						\
	const char *check_a_ = (a), *check_b_ = (b);			\
	if (check_a_ != NULL && check_b_ != NULL &&			\
	    strcmp(check_a_, check_b_) == 0)				\
		check_passed++;						\
	else {								\
		check_failed++;						\
		fprintf(stderr, "%s:%d: %s != %s\n  got:  '%s'\n"	\
		    "  want: '%s'\n", __FILE__, __LINE__, #a, #b,	\
		    check_a_ ? check_a_ : "(null)",			\
		    check_b_ ? check_b_ : "(null)");			\
	}								\
} while (0)

#define CHECK_DONE() do {						\
	printf("%s: %d passed, %d failed\n", __FILE__,			\
	    check_passed, check_failed);				\
	return check_failed ? 1 : 0;					\
} while (0)

#endif
