/*
 * What the C test programs share: CHECK, which counts a failure and goes
 * on, so one run reports every broken check, and a probe for mappings.
 */
#ifndef MEMGUARD_CHECK_H
#define MEMGUARD_CHECK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

static int passed, failed;
static size_t page; /* set by main */

#define CHECK(cond)                                                       \
	do {                                                              \
		if (cond) {                                               \
			passed++;                                         \
		} else {                                                  \
			failed++;                                         \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",      \
				__FILE__, __LINE__, #cond);               \
		}                                                         \
	} while (0)

/* Whether p's page is mapped; if so, it is left PROT_NONE. */
static int mapped(const void *p)
{
	/* mprotect fails with ENOMEM on an address that is not mapped */
	return mprotect((void *)((uintptr_t)p & ~(uintptr_t)(page - 1)), page, PROT_NONE) == 0 || errno != ENOMEM;
}

#endif
