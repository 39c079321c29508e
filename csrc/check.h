/*
 * What the C test programs share: CHECK, which counts a failure and goes
 * on, so one run reports every broken check, and probes for mappings and
 * descriptors. The probes are inline so that a program may leave some
 * unused.
 */
#ifndef MEMGUARD_CHECK_H
#define MEMGUARD_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int passed, failed;
/* Set by main: the page size regions are laid out with, forced or the
 * system's, and the system's, which the kernel's calls take. */
static size_t page, sys_page;

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
static inline int mapped(const void *p)
{
	/* mprotect fails with ENOMEM on an address that is not mapped */
	return mprotect((void *)((uintptr_t)p & ~(uintptr_t)(sys_page - 1)), sys_page, PROT_NONE) == 0 || errno != ENOMEM;
}

#if defined(__linux__)
/* The smaps line of the mapping holding p that starts with field (its
 * header line if field is NULL), copied to out; 0 if there is none. */
static inline int smaps_line(const void *p, const char *field, char *out, int n)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)p;
	int in = 0, found = 0;
	char c;

	if (f == NULL)
		return 0;
	while (!found && fgets(out, n, f) != NULL) {
		if (sscanf(out, "%lx-%lx %c", &lo, &hi, &c) == 3)
			in = lo <= a && a < hi;
		else if (!in || field == NULL)
			continue;
		if (in)
			found = field == NULL || strncmp(out, field, strlen(field)) == 0;
	}
	fclose(f);
	return found;
}

/* Whether the mapping holding p has VmFlags flag (two letters). */
static inline int has_vmflag(const void *p, const char *flag)
{
	char line[512], want[8];

	snprintf(want, sizeof want, " %s", flag);
	return smaps_line(p, "VmFlags:", line, sizeof line) &&
	       strstr(line, want) != NULL;
}

static inline int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Lines of /proc/self/maps naming secret memory. */
static inline int secret_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, "secretmem") != NULL;
	fclose(f);
	return n;
}
#endif

#endif
