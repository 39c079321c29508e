/*
 * memguard C core: guarded, locked regions outside any garbage-collected heap.
 *
 * A region is laid out as
 *
 *   [guard page][pad | canary | data (16-aligned) | tail canary][guard page]
 *
 * inside a guarded mapping (mg_map). Guard pages are PROT_NONE and never
 * written, so they cost address space but no resident memory. The data ends
 * where the tail canary pads it to 16 bytes, and the tail canary ends at the
 * trailing guard page, so an overflow hits either the tail canary or the
 * guard page. Metadata (this struct) lives in the C heap, never inside the
 * region.
 *
 * Every function returns an MG_* status. Where the operating system refused
 * something, errno says why, as a system call would leave it. Nothing here
 * aborts.
 */
#ifndef MEMGUARD_H
#define MEMGUARD_H

#include <stddef.h>
#include <stdint.h>

#define MG_CANARY_LEN 16
#define MG_ALIGN 16

enum mg_status {
	MG_OK = 0,
	MG_EINVAL,   /* size is zero, too large, or does not fit the region */
	MG_ENOMEM,   /* mmap or malloc refused, or secret memory for lack of memory */
	MG_ELOCK,    /* mlock refused, or secret memory exceeds RLIMIT_MEMLOCK */
	MG_EPROTECT, /* mprotect or madvise refused */
	MG_ERANDOM,  /* the kernel's random source failed */
	MG_ECANARY,  /* a canary or the padding before it was overwritten */
	MG_EUNMAP,   /* munmap refused; the mapping is leaked */
	/* Secret memory cannot be had here, for a reason other than memory
	 * or the lock limit, which errno gives: ENOSYS (not in this kernel,
	 * or secretmem.enable=0, or no memfd_secret on this system at all),
	 * EINVAL or EOPNOTSUPP, EPERM (a seccomp or security-module filter),
	 * EMFILE or ENFILE (no descriptor left), or another refusal of the
	 * descriptor's size or mapping. */
	MG_EUNSUPPORTED
};

/*
 * A guarded mapping: pages_len bytes of data pages between two PROT_NONE
 * guard pages, writable, advised out of core dumps, and gone from or zeroed
 * in forked children:
 *
 *   ordinary pages: MADV_DONTDUMP, MADV_WIPEONFORK; with MG_MAP_LOCK, locked
 *     on fault by mlock2(MLOCK_ONFAULT), or by mlock where that is refused.
 *   MG_MAP_SECRET: memfd_secret(2) pages, mapped MAP_SHARED and advised
 *     MADV_DONTFORK, their descriptor closed. They are out of the kernel's
 *     direct map: /proc/PID/mem, process_vm_readv and ptrace cannot read
 *     them. The kernel marks them locked and never dumped, and charges them
 *     to RLIMIT_MEMLOCK whatever the flags (exceeding it is MG_ELOCK, with
 *     errno EAGAIN); they are never passed to mlock, which fails on them.
 *
 * On failure m is zeroed and nothing stays mapped or open.
 */
#define MG_MAP_LOCK 1u
#define MG_MAP_SECRET 2u

typedef struct mg_map {
	unsigned char *base;  /* start of the mapping: the leading guard page */
	size_t map_len;       /* whole mapping, guard pages included */
	unsigned char *pages; /* first data page */
	size_t pages_len;     /* data pages, a multiple of the page size */
	int locked;           /* data pages are locked */
	int secret;           /* data pages are memfd_secret memory */
} mg_map;

size_t mg_page_size(void);
/* MG_EINVAL unless pages_len is a non-zero multiple of the page size. */
int mg_map_new(size_t pages_len, unsigned flags, mg_map *m);
/* Wipes the data pages that ever held data (they must be writable): all of
 * them under 64 KiB, else only those in memory (mg_wipe_touched), so that
 * the pages nothing wrote are not faulted in; then unmaps m whole and
 * zeroes it. MG_EUNMAP if munmap refused. */
int mg_map_free(mg_map *m);

/*
 * Protection of a region's data pages. A region starts MG_PROT_RW. Later
 * changes are made by the caller (the Go layer issues mprotect itself, for
 * the reason given in core.go), which records each one in prot. The core
 * reads prot to know what it may touch: it writes only MG_PROT_RW pages and
 * reads only pages that are not MG_PROT_NONE.
 */
enum mg_prot {
	MG_PROT_RW = 0,  /* read and write */
	MG_PROT_RO = 1,  /* read only: frozen */
	MG_PROT_NONE = 2 /* no access: idle */
};

typedef struct mg_region {
	unsigned char *base;  /* start of the mapping: the leading guard page */
	size_t map_len;       /* whole mapping, guard pages included */
	unsigned char *pages; /* first data page */
	size_t pages_len;     /* data pages, a multiple of the page size */
	unsigned char *data;  /* MG_ALIGN-aligned start of the secret */
	size_t size;          /* secret length in bytes */
	size_t tail_len;      /* tail canary bytes after the secret, < MG_ALIGN */
	int locked;           /* data pages are locked */
	int secret;           /* data pages are memfd_secret memory */
	int prot;             /* enum mg_prot of the data pages, as set by the caller */
	unsigned char canary[MG_CANARY_LEN];
} mg_region;

/* Bytes of data pages needed to hold size secret bytes; 0 if it overflows. */
size_t mg_pages_for(size_t size);
/* mg_pages_for with pages of page bytes; 0 if page is 0. */
size_t mg_pages_for_page(size_t size, size_t page);

/* flags are mg_map_new's. */
int mg_region_new(size_t size, unsigned flags, mg_region **out);
/* Re-lays a cleared, writable region for a new size with a fresh canary. */
int mg_region_place(mg_region *r, size_t size);
/* Full check: both canaries and the zero padding before the leading one.
 * MG_EPROTECT if the region is not readable (MG_PROT_NONE). */
int mg_region_verify(const mg_region *r);
/* Wipes the secret but not the canaries. MG_EPROTECT unless writable. */
int mg_region_wipe(mg_region *r);
/* Wipes data and canaries. MG_EPROTECT unless writable. */
int mg_region_clear(mg_region *r);
/* Verifies, then clears for reuse; if the check fails, clears nothing and
 * returns its status. MG_EPROTECT unless writable. */
int mg_region_recycle(mg_region *r);
/* Wipes and unmaps the region and frees r, whatever fails on the way. Only
 * writable pages can be wiped: for others it returns MG_EPROTECT, after
 * unmapping all the same. */
int mg_region_free(mg_region *r);
/* mg_region_free for n regions at once, reordering rs: adjacent mappings
 * are unmapped by one munmap, which flushes the TLB once per run instead of
 * once per region. */
int mg_regions_free(mg_region **rs, size_t n);

void mg_wipe(void *p, size_t n);
/* mg_wipe, skipping the whole pages of a span of 64 KiB and more than one
 * page that are not in memory (never touched) or read as zeros (touched
 * only by reads, which map the shared zero page); if residency cannot be
 * read, it wipes everything. */
void mg_wipe_touched(void *p, size_t n);
/* 1 if the n bytes at p are all zero, else 0; time depends only on n. */
int mg_is_zero(const void *p, size_t n);
/* 1 if the n bytes at a and b are equal, else 0; time depends only on n. */
int mg_equal(const void *a, const void *b, size_t n);
int mg_random(void *buf, size_t n);
/* Soft RLIMIT_MEMLOCK in bytes; (unsigned long long)-1 when unlimited. */
int mg_memlock_limit(unsigned long long *cur);

#ifdef MG_FAULT_INJECTION
/* Test hook: the call after `after` more successful ones of `which` fails
 * with errno `err`. */
enum mg_fault { MG_F_MMAP, MG_F_MPROTECT, MG_F_MADVISE, MG_F_MLOCK2,
		MG_F_MLOCK, MG_F_MUNMAP, MG_F_RANDOM, MG_F_MALLOC,
		MG_F_MINCORE, MG_F_MEMFD_SECRET, MG_F_FTRUNCATE, MG_F_MMAP_FD,
		MG_F_CLOSE, MG_F_COUNT };
void mg_fault_set(enum mg_fault which, int after, int err);
void mg_fault_clear(void);
/* Test hook: the next canary refills the pool from the random source. */
void mg_canary_pool_empty(void);
/* Test hook: locking tries mlock2(MLOCK_ONFAULT) first again. */
void mg_lock_forget(void);
/* Test hook: regions made from now on use pages of page bytes, a multiple
 * of the real page size; 0 goes back to the system's. */
void mg_page_size_force(size_t page);
#endif


/* ------------------------------------------------------------------------
 * Compact slot arena (arena.c): secrets of up to MG_ARENA_MAX bytes packed
 * into slots of shared locked chunks, so a small secret costs a slot, not a
 * locked page and a mapping of its own.
 *
 * A chunk is one guarded mapping (mg_map), made with the arena's flags:
 *
 *   [guard page][C0 | slot 0 | C1 | slot 1 | ... | slot n-1 | Cn | unused][guard page]
 *
 * Every Ci is MG_CANARY_LEN bytes and every slot `cap` bytes, one of the
 * classes 32, 64, 128, 256, so each slot's data starts MG_ALIGN-aligned.
 * Each Ci has its own random value, kept with the rest of the metadata in
 * the C heap, never inside the chunk.
 *
 * Invariant, for a slot i holding a secret of `size` bytes (1 <= size <= cap):
 *   data - 16 .. data - 1     == Ci                  (the lead canary)
 *   data + k, size <= k < cap == C(i+1)[k % 16]      (the padding)
 *   data + cap .. data+cap+15 == C(i+1)              (the tail canary)
 * so every byte from data + size to data + cap + 15 is C(i+1)[k % 16].
 * A contiguous write past the secret's end, however short, changes one of
 * those bytes, and one before its start changes Ci, unless it writes the
 * random bytes already there. Ci is also the tail canary of slot i - 1 and
 * C(i+1) the lead canary of slot i + 1, so a write that reaches a
 * neighbour is seen from both slots. A free slot's cap bytes are zero.
 * A canary's value is drawn when the slot before it is first used and
 * then never changes while the chunk is mapped, so a live slot's expected
 * bytes (lead, tail) are stable and can be read without a lock.
 * ------------------------------------------------------------------------ */
#define MG_ARENA_MAX 256    /* largest secret a slot holds */
#define MG_ARENA_CLASSES 4  /* slot capacities 32 << k, k < MG_ARENA_CLASSES */

typedef struct mg_arena mg_arena;
typedef struct mg_chunk mg_chunk;

/*
 * A live slot, as handed to the caller: everything a check needs, by plain
 * pointers, so the Go layer checks a slot as mg_slot_check does, without a
 * cgo call. The caller owns this struct; the bytes data and canary point
 * to stay valid until the slot is freed. It is 32 bytes on 64-bit systems,
 * as the Go layer keeps one per secret.
 */
typedef struct mg_slot {
	unsigned char *data;         /* MG_ALIGN-aligned; Ci is the 16 bytes before */
	/* Expected canaries: Ci (the lead) at canary, then C(i+1) (the tail)
	 * at canary + MG_CANARY_LEN, which is at data + cap, and whose byte
	 * k % 16 is at data[k] for size <= k < cap. */
	const unsigned char *canary;
	mg_chunk *chunk;             /* with index, the handle mg_arena_free takes */
	uint16_t size;               /* secret bytes, 1 .. cap */
	uint16_t cap;                /* class capacity: padding is [size, cap) */
	uint16_t index;
	unsigned char locked;        /* the chunk's pages are locked */
	unsigned char secret;        /* the chunk's pages are memfd_secret memory */
} mg_slot;

typedef struct mg_arena_stats {
	size_t chunks;       /* mappings, one per chunk */
	size_t mapped;       /* bytes mapped, guard pages included */
	size_t locked;       /* bytes locked */
	size_t live;         /* slots allocated */
	size_t quarantined;  /* slots freed with broken canaries, never reused */
} mg_arena_stats;

/* An empty arena; its chunks are mapped with flags, mg_map_new's. */
int mg_arena_new(unsigned flags, mg_arena **out);
/* A zeroed slot for size bytes, 1 <= size <= MG_ARENA_MAX, in the smallest
 * class that holds it. Thread-safe; threads draw from separate shards. On
 * failure *out is zeroed. A chunk that cannot be locked is retried at half
 * the size: MG_ELOCK only once no chunk of one page could be locked and no
 * other shard had a free slot of the class. MG_EUNSUPPORTED: the arena's
 * flags ask for secret memory, which this system does not have. */
int mg_arena_alloc(mg_arena *a, size_t size, mg_slot *out);
/* The slot's lead canary, padding and tail canary: MG_OK or MG_ECANARY.
 * Takes no lock: other slots may be allocated and freed meanwhile. */
int mg_slot_check(const mg_slot *s);
/* Wipes the secret, keeping the padding and canaries. */
void mg_slot_wipe(const mg_slot *s);
/* Checks the slot, wipes its data and padding and frees it, zeroing *s.
 * MG_ECANARY if the check failed: the slot is freed all the same but never
 * reused, leaving the broken canaries for its neighbours to report.
 * MG_EUNMAP if the chunk it emptied was released and munmap refused (the
 * slot is freed). MG_EINVAL if s is not a live slot; nothing changes then.
 * Thread-safe. */
int mg_arena_free(mg_slot *s);
/* Unmaps the empty chunk each shard keeps per class for reuse, wiped, and
 * lets new chunks grow past a size the lock limit once refused again.
 * Thread-safe. MG_EUNMAP if a chunk could not be unmapped (it is leaked). */
int mg_arena_trim(mg_arena *a);
/* Every canary, padding and free slot of the arena: MG_OK or MG_ECANARY. */
int mg_arena_verify(mg_arena *a);
/* 1 if the n bytes at address p overlap a chunk of the arena, else 0. An
 * address, not a pointer: the caller may ask about any memory. */
int mg_arena_overlaps_range(mg_arena *a, uintptr_t p, size_t n);
/*
 * The addresses [lo, hi) cover every chunk the arena has mapped: it only
 * widens, never narrows, as chunks come and go. A range outside it overlaps
 * no chunk, which a caller can tell without a call or a lock by reading
 * both bounds atomically (__atomic_load_n, or sync/atomic from Go) through
 * the pointer mg_arena_span returns, valid while the arena lives. An empty
 * arena's span has lo = UINTPTR_MAX and hi = 0.
 */
typedef struct mg_span {
	uintptr_t lo, hi;
} mg_span;
const mg_span *mg_arena_span(const mg_arena *a);
/* Totals over the arena's shards, each read under its lock. */
int mg_arena_stats_get(mg_arena *a, mg_arena_stats *st);
/* Wipes every page the arena wrote, unmaps every chunk and frees a, whatever
 * fails on the way (MG_EUNMAP: a mapping is leaked). Every slot dies with
 * it; no other call on a may run concurrently. */
int mg_arena_destroy(mg_arena *a);

#endif
