/*
 * Wiping, constant-time comparison, randomness and limits: the small
 * primitives the region code and the Go layer share.
 */
#if defined(__APPLE__)
#define __STDC_WANT_LIB_EXT1__ 1 /* memset_s, before <string.h> */
#endif

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h> /* getrandom on Linux, getentropy on macOS */
#include <sys/resource.h>

#include "memguard.h"
#include "sys.h"

void mg_wipe(void *p, size_t n)
{
	if (n == 0)
		return;
#if defined(__linux__)
	explicit_bzero(p, n);
#elif defined(__APPLE__)
	/* C11 Annex K: memset_s is never dropped as a dead store. It fails
	 * only for a null p, which no caller passes with n > 0, or for n
	 * above smax, which smax == n rules out. */
	(void)memset_s(p, n, 0, n);
#else
#error "memguard's C core supports Linux and macOS"
#endif
}

int mg_is_zero(const void *p, size_t n)
{
	const unsigned char *x = p;
	uint64_t acc = 0, w;
	size_t i = 0;

	/* Words ORed together, which the compiler vectorises: as fast as
	 * memcmp, without stopping at the first byte that differs. */
	for (; i + sizeof w <= n; i += sizeof w) {
		memcpy(&w, x + i, sizeof w);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= x[i];
	return acc == 0;
}

int mg_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned int d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return (int)(1 & ((d - 1) >> 8));
}

int mg_random(void *buf, size_t n)
{
	unsigned char *p = buf;

#ifdef MG_FAULT_INJECTION
	if (mg_fault_hit(MG_F_RANDOM))
		return MG_ERANDOM;
#endif
	while (n > 0) {
#if defined(__linux__)
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return MG_ERANDOM;
		}
#elif defined(__APPLE__)
		size_t got = n < 256 ? n : 256; /* getentropy's limit */
		if (getentropy(p, got) != 0)
			return MG_ERANDOM;
#endif
		p += got;
		n -= (size_t)got;
	}
	return MG_OK;
}

int mg_memlock_limit(unsigned long long *cur)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return MG_EINVAL;
	*cur = rl.rlim_cur == RLIM_INFINITY ? (unsigned long long)-1
					    : (unsigned long long)rl.rlim_cur;
	return MG_OK;
}

#ifdef MG_FAULT_INJECTION
static struct {
	int armed, after, err;
} faults[MG_F_COUNT];

void mg_fault_set(enum mg_fault which, int after, int err)
{
	faults[which].armed = 1;
	faults[which].after = after;
	faults[which].err = err;
}

void mg_fault_clear(void)
{
	memset(faults, 0, sizeof faults);
}

int mg_fault_hit(enum mg_fault which)
{
	if (!faults[which].armed)
		return 0;
	if (faults[which].after-- > 0)
		return 0;
	faults[which].armed = 0;
	errno = faults[which].err;
	return 1;
}
#endif
