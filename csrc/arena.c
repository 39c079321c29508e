/*
 * Compact slot arena. See memguard.h for the layout and its invariant.
 *
 * Bookkeeping: the arena is split into shards, each with its own mutex and
 * its own chunks; a thread allocates from the shard it was given on first
 * use, so threads do not contend on one lock, and a free goes back to the
 * shard that owns the chunk. Per shard and class, the chunks with a free
 * slot form a list; in a chunk, freed slots form a list threaded through
 * `next`, and slots never used yet are taken in order from `fresh`. Both
 * are O(1) and need no system call: the canary after a fresh slot comes
 * from a per-shard pool of random bytes.
 *
 * A canary keeps its value while the chunk lives, through any number of
 * reuses of the slots beside it: drawing new random values for a freed
 * slot's two canaries would cost several times the rest of an allocation
 * and free. It also means a live slot's canaries never change under a
 * reader.
 *
 * C heap per slot: its lead canary's value (16 bytes), size and next (2
 * each). A chunk's canary values are one array, so a slot's lead and tail
 * are adjacent there and mg_slot needs one pointer for both. Chunks double
 * from one page up to CHUNK_MAX bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "memguard.h"
#include "sys.h"

#define CHUNK_MAX ((size_t)2 << 20) /* bytes of slot pages in a chunk */
#define NONE UINT16_MAX            /* end of a free list */
#define QUARANTINED UINT16_MAX     /* size of a slot freed while corrupt */
#define MAX_SHARDS 64

enum { ALL, OPEN }; /* the two lists a chunk is on: every chunk, free slots */

struct mg_chunk {
	struct mg_shard *shard;
	struct {
		mg_chunk *prev, *next;
	} link[2];
	mg_map map;           /* map.pages starts with C0 */
	size_t cap, stride;   /* stride = MG_CANARY_LEN + cap */
	unsigned int cls, nslots, fresh, used;
	uint16_t free_head;
	int open;             /* on the OPEN list */
	uint16_t *size;       /* per slot: 0 free, else size or QUARANTINED */
	uint16_t *next;       /* per slot: next free slot */
	unsigned char (*canary)[MG_CANARY_LEN]; /* nslots + 1 values */
};

struct mg_shard {
	pthread_mutex_t mu;
	mg_arena *arena;
	struct {
		mg_chunk *all, *open;
		mg_chunk *spare;   /* the one empty chunk kept mapped */
		size_t pages;     /* bytes of slot pages of the chunks in `all` */
		size_t max_pages; /* the most a new chunk tries: CHUNK_MAX, or
				   * what fitted the lock limit last */
	} cls[MG_ARENA_CLASSES];
	mg_arena_stats st;
	size_t rnd_next;
	unsigned char rnd[64 * MG_CANARY_LEN];
	char pad[64]; /* keeps shards' hot fields off each other's lines */
};

struct mg_arena {
	mg_span span;         /* first: mg_arena_span's answer points here */
	size_t page;
	unsigned flags;       /* mg_map_new's, for every chunk */
	unsigned int nshards; /* a power of two */
	struct mg_shard shards[];
};

static void link_in(mg_chunk **head, mg_chunk *c, int l)
{
	c->link[l].prev = NULL;
	c->link[l].next = *head;
	if (*head != NULL)
		(*head)->link[l].prev = c;
	*head = c;
}

static void link_out(mg_chunk **head, mg_chunk *c, int l)
{
	if (c->link[l].prev != NULL)
		c->link[l].prev->link[l].next = c->link[l].next;
	else
		*head = c->link[l].next;
	if (c->link[l].next != NULL)
		c->link[l].next->link[l].prev = c->link[l].prev;
	c->link[l].prev = c->link[l].next = NULL;
}

/* A canary value from the shard's pool; bytes are wiped as handed out. */
static int draw(struct mg_shard *sh, unsigned char out[MG_CANARY_LEN])
{
	if (sh->rnd_next == sizeof sh->rnd) {
		if (mg_random(sh->rnd, sizeof sh->rnd) != MG_OK)
			return MG_ERANDOM;
		sh->rnd_next = 0;
	}
	memcpy(out, sh->rnd + sh->rnd_next, MG_CANARY_LEN);
	mg_wipe(sh->rnd + sh->rnd_next, MG_CANARY_LEN);
	sh->rnd_next += MG_CANARY_LEN;
	return MG_OK;
}

static unsigned char *slot_data(const mg_chunk *c, unsigned int i)
{
	return c->map.pages + (size_t)i * c->stride + MG_CANARY_LEN;
}

/* Sets canary i, in the chunk and out of band, to a new random value. */
static int set_canary(struct mg_shard *sh, mg_chunk *c, unsigned int i)
{
	if (draw(sh, c->canary[i]) != MG_OK)
		return MG_ERANDOM;
	memcpy(c->map.pages + (size_t)i * c->stride, c->canary[i], MG_CANARY_LEN);
	return MG_OK;
}

/*
 * Wipes and unmaps the chunk and frees its metadata. mg_map_free wipes
 * every page that ever held data, found by residency from 64 KiB on, so
 * also a page that an overflow ran into past the slots handed out, which
 * a count of those slots would miss. A smaller chunk is wiped whole, which
 * costs about what a residency check would.
 */
static int chunk_free(struct mg_shard *sh, mg_chunk *c)
{
	int st;

	sh->st.chunks--;
	sh->st.mapped -= c->map.map_len;
	if (c->map.locked)
		sh->st.locked -= c->map.pages_len;
	for (unsigned int i = 0; i < c->fresh; i++)
		sh->st.quarantined -= c->size[i] == QUARANTINED;
	mg_wipe(c->canary, ((size_t)c->nslots + 1) * MG_CANARY_LEN);
	st = mg_map_free(&c->map);
	free(c); /* keeps errno */
	return st;
}

/* Takes c off its shard's lists and frees it. */
static int release(struct mg_shard *sh, mg_chunk *c)
{
	if (c->open)
		link_out(&sh->cls[c->cls].open, c, OPEN);
	link_out(&sh->cls[c->cls].all, c, ALL);
	sh->cls[c->cls].pages -= c->map.pages_len;
	return chunk_free(sh, c);
}

/*
 * Widens sp to cover m. Shards map chunks concurrently, so each bound moves
 * by compare-and-swap, lo only down and hi only up.
 */
static void widen_span(mg_span *sp, const mg_map *m)
{
	uintptr_t lo = (uintptr_t)m->base, hi = lo + m->map_len;
	uintptr_t cur = __atomic_load_n(&sp->lo, __ATOMIC_RELAXED);

	while (lo < cur && !__atomic_compare_exchange_n(&sp->lo, &cur, lo, 1,
			__ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	cur = __atomic_load_n(&sp->hi, __ATOMIC_RELAXED);
	while (hi > cur && !__atomic_compare_exchange_n(&sp->hi, &cur, hi, 1,
			__ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/*
 * A new empty chunk of class k for shard sh, as large as the class's chunks
 * together plus a page (so sizes double, 1, 2, 4 ... pages, and start from
 * one page again once the chunks are released), up to max_pages, and as
 * near to that as the lock limit allows: a chunk that cannot be locked is
 * retried at half the size, down to one page, before MG_ELOCK.
 */
static int chunk_new(struct mg_shard *sh, unsigned int k, mg_chunk **out)
{
	mg_arena *a = sh->arena;
	size_t page = a->page, cap = (size_t)32 << k, stride = MG_CANARY_LEN + cap;
	size_t len = sh->cls[k].pages + page, n, meta;
	mg_map m;
	mg_chunk *c;
	int st, saved;

	if (len > sh->cls[k].max_pages)
		len = sh->cls[k].max_pages;
	for (;;) {
		st = mg_map_new(len, a->flags, &m);
		if (st != MG_ELOCK || len == page)
			break;
		len = (len / 2 + page - 1) / page * page;
	}
	if (st != MG_OK)
		return st;
	n = (len - MG_CANARY_LEN) / stride;
	if (n > NONE - 1)
		n = NONE - 1;
	meta = (n + 1) * MG_CANARY_LEN + 2 * n * sizeof(uint16_t);
	c = sys_calloc(1, sizeof *c + meta);
	if (c == NULL) {
		saved = errno;
		(void)mg_map_free(&m); /* nothing written yet */
		errno = saved;
		return MG_ENOMEM;
	}
	c->shard = sh;
	c->map = m;
	c->cap = cap;
	c->stride = stride;
	c->cls = k;
	c->nslots = (unsigned int)n;
	c->free_head = NONE;
	c->canary = (unsigned char(*)[MG_CANARY_LEN])(c + 1);
	c->size = (uint16_t *)(c->canary + n + 1);
	c->next = c->size + n;
	if (set_canary(sh, c, 0) != MG_OK) {
		saved = errno;
		(void)mg_map_free(&c->map);
		free(c);
		errno = saved;
		return MG_ERANDOM;
	}
	/* After a retry, try no more than what fitted until trimmed. */
	if (len < sh->cls[k].max_pages && len < sh->cls[k].pages + page)
		sh->cls[k].max_pages = len;
	sh->cls[k].pages += len;
	widen_span(&a->span, &m);
	link_in(&sh->cls[k].all, c, ALL);
	link_in(&sh->cls[k].open, c, OPEN);
	c->open = 1;
	sh->st.chunks++;
	sh->st.mapped += m.map_len;
	if (m.locked)
		sh->st.locked += len;
	*out = c;
	return MG_OK;
}

/* A slot of class k from sh's open chunks, without mapping: MG_ENOMEM if
 * there is none. */
static int take(struct mg_shard *sh, unsigned int k, size_t size, mg_slot *out)
{
	mg_chunk *c = sh->cls[k].open;
	unsigned int i;
	unsigned char *d;

	if (c == NULL)
		return MG_ENOMEM;
	if (c->free_head != NONE) {
		i = c->free_head;
		c->free_head = c->next[i];
	} else {
		i = c->fresh;
		if (set_canary(sh, c, i + 1) != MG_OK)
			return MG_ERANDOM;
		c->fresh++;
	}
	if (c->free_head == NONE && c->fresh == c->nslots) {
		link_out(&sh->cls[k].open, c, OPEN);
		c->open = 0;
	}
	if (sh->cls[k].spare == c)
		sh->cls[k].spare = NULL;
	c->used++;
	c->size[i] = (uint16_t)size;
	sh->st.live++;
	d = slot_data(c, i);
	for (size_t j = size; j < c->cap; j++)
		d[j] = c->canary[i + 1][j % MG_CANARY_LEN];
	out->data = d;
	out->canary = c->canary[i];
	out->chunk = c;
	out->size = (uint16_t)size;
	out->cap = (uint16_t)c->cap;
	out->index = (uint16_t)i;
	out->locked = c->map.locked != 0;
	out->secret = c->map.secret != 0;
	return MG_OK;
}

static unsigned int my_shard(const mg_arena *a)
{
	static atomic_uint ids;
	static _Thread_local unsigned int id; /* 0 until first use */

	if (id == 0)
		id = atomic_fetch_add_explicit(&ids, 1, memory_order_relaxed) + 1;
	return (id - 1) & (a->nshards - 1);
}

int mg_arena_new(unsigned flags, mg_arena **out)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t page = mg_page_size();
	unsigned int n = 1, i, k;
	mg_arena *a;

	*out = NULL;
	/* A page holds a slot of every class: no system has smaller ones. */
	if (page < 2 * (MG_CANARY_LEN + MG_ARENA_MAX))
		return MG_EINVAL;
	while (n < MAX_SHARDS && (long)n < 2 * cpus)
		n *= 2;
	a = sys_calloc(1, sizeof *a + n * sizeof a->shards[0]);
	if (a == NULL)
		return MG_ENOMEM;
	a->span.lo = UINTPTR_MAX; /* empty: no address is inside */
	a->page = page;
	a->flags = flags;
	a->nshards = n;
	for (i = 0; i < n; i++) {
		int err = pthread_mutex_init(&a->shards[i].mu, NULL);
		if (err != 0) { /* Linux never fails; others may lack memory */
			while (i-- > 0)
				(void)pthread_mutex_destroy(&a->shards[i].mu);
			free(a);
			errno = err;
			return MG_ENOMEM;
		}
		a->shards[i].arena = a;
		a->shards[i].rnd_next = sizeof a->shards[i].rnd;
		for (k = 0; k < MG_ARENA_CLASSES; k++)
			a->shards[i].cls[k].max_pages = CHUNK_MAX;
	}
	*out = a;
	return MG_OK;
}

int mg_arena_alloc(mg_arena *a, size_t size, mg_slot *out)
{
	unsigned int k = 0, s = my_shard(a), i;
	struct mg_shard *sh = &a->shards[s];
	mg_chunk *c;
	int st, saved;

	memset(out, 0, sizeof *out);
	if (size == 0 || size > MG_ARENA_MAX)
		return MG_EINVAL;
	while (((size_t)32 << k) < size)
		k++;
	(void)pthread_mutex_lock(&sh->mu); /* fails only on misuse */
	st = take(sh, k, size, out);
	if (st == MG_ENOMEM) {
		st = chunk_new(sh, k, &c);
		if (st == MG_OK)
			st = take(sh, k, size, out);
	}
	saved = errno;
	(void)pthread_mutex_unlock(&sh->mu);
	/* Out of lockable memory or mappings: a free slot in another
	 * shard's chunks beats failing. */
	for (i = 1; (st == MG_ELOCK || st == MG_ENOMEM) && i < a->nshards; i++) {
		struct mg_shard *o = &a->shards[(s + i) & (a->nshards - 1)];
		(void)pthread_mutex_lock(&o->mu);
		if (take(o, k, size, out) == MG_OK)
			st = MG_OK;
		(void)pthread_mutex_unlock(&o->mu);
	}
	errno = saved;
	return st;
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/*
 * Every byte from data + size to data + cap + 15 is the tail canary's
 * byte k % 16, and data is MG_ALIGN-aligned while cap is a multiple of 16:
 * so past the bytes up to the next multiple of 8, the span is whole words,
 * each one half of the tail canary. Differences are accumulated, with no
 * branch on the bytes compared, as mg_equal does, but a word at a time
 * rather than a byte.
 */
int mg_slot_check(const mg_slot *s)
{
	const unsigned char *d = s->data, *lead = s->canary;
	const unsigned char *tail = lead + MG_CANARY_LEN;
	uint64_t diff = (load64(d - MG_CANARY_LEN) ^ load64(lead)) |
			(load64(d - 8) ^ load64(lead + 8));
	size_t k = s->size, end = (size_t)s->cap + MG_CANARY_LEN;

	for (; k % 8 != 0; k++)
		diff |= (uint64_t)(d[k] ^ tail[k % MG_CANARY_LEN]);
	for (; k < end; k += 8)
		diff |= load64(d + k) ^ load64(tail + k % MG_CANARY_LEN);
	return diff == 0 ? MG_OK : MG_ECANARY;
}

void mg_slot_wipe(const mg_slot *s)
{
	mg_wipe(s->data, s->size);
}

int mg_arena_free(mg_slot *s)
{
	mg_chunk *c = s->chunk;
	struct mg_shard *sh;
	unsigned int i = s->index, k;
	int st;

	if (c == NULL)
		return MG_EINVAL;
	sh = c->shard;
	k = c->cls;
	(void)pthread_mutex_lock(&sh->mu);
	if (i >= c->fresh || s->data != slot_data(c, i) || s->cap != c->cap ||
	    s->canary != c->canary[i] || s->size == 0 || c->size[i] != s->size) {
		(void)pthread_mutex_unlock(&sh->mu);
		return MG_EINVAL;
	}
	st = mg_slot_check(s);
	mg_wipe(s->data, c->cap);
	if (st == MG_OK) {
		c->size[i] = 0;
		c->next[i] = c->free_head;
		c->free_head = (uint16_t)i;
	} else {
		c->size[i] = QUARANTINED;
		sh->st.quarantined++;
	}
	c->used--;
	sh->st.live--;
	if (!c->open && c->free_head != NONE) {
		link_in(&sh->cls[k].open, c, OPEN);
		c->open = 1;
	}
	/* One empty chunk per shard and class stays mapped, so a secret
	 * made and destroyed in a loop does not map a chunk each time: the
	 * smaller, which holds the least locked memory idle. */
	if (c->used == 0 && c->open) {
		mg_chunk *spare = sh->cls[k].spare;
		if (spare == NULL || c->map.pages_len < spare->map.pages_len) {
			sh->cls[k].spare = c;
			c = spare;
		}
	}
	if (c != NULL && c->used == 0 && release(sh, c) != MG_OK && st == MG_OK)
		st = MG_EUNMAP;
	(void)pthread_mutex_unlock(&sh->mu);
	memset(s, 0, sizeof *s);
	return st;
}

int mg_arena_trim(mg_arena *a)
{
	int st = MG_OK, saved = 0;

	for (unsigned int s = 0; s < a->nshards; s++) {
		struct mg_shard *sh = &a->shards[s];
		(void)pthread_mutex_lock(&sh->mu);
		for (unsigned int k = 0; k < MG_ARENA_CLASSES; k++) {
			mg_chunk *c = sh->cls[k].spare;
			sh->cls[k].spare = NULL;
			/* only a spare can be empty: others go as they empty */
			if (c != NULL && release(sh, c) != MG_OK) {
				st = MG_EUNMAP;
				saved = errno;
			}
			/* the lock limit may have room again */
			sh->cls[k].max_pages = CHUNK_MAX;
		}
		(void)pthread_mutex_unlock(&sh->mu);
	}
	errno = saved;
	return st;
}

static int chunk_verify(const mg_chunk *c)
{
	mg_slot s = {.cap = (uint16_t)c->cap};
	int ok = 1;

	for (unsigned int i = 0; i < c->fresh; i++) {
		s.data = slot_data(c, i);
		if (c->size[i] == 0 || c->size[i] == QUARANTINED) {
			ok &= mg_is_zero(s.data, c->cap);
			continue;
		}
		s.size = c->size[i];
		s.canary = c->canary[i];
		ok &= mg_slot_check(&s) == MG_OK;
	}
	/* lead canaries of the free slots, and C(fresh) */
	for (unsigned int i = 0; i <= c->fresh; i++)
		ok &= mg_equal(c->map.pages + (size_t)i * c->stride, c->canary[i],
			       MG_CANARY_LEN);
	return ok;
}

int mg_arena_verify(mg_arena *a)
{
	int ok = 1;

	for (unsigned int s = 0; s < a->nshards; s++) {
		struct mg_shard *sh = &a->shards[s];
		(void)pthread_mutex_lock(&sh->mu);
		for (unsigned int k = 0; k < MG_ARENA_CLASSES; k++)
			for (mg_chunk *c = sh->cls[k].all; c != NULL; c = c->link[ALL].next)
				ok &= chunk_verify(c);
		(void)pthread_mutex_unlock(&sh->mu);
	}
	return ok ? MG_OK : MG_ECANARY;
}

static int chunk_overlaps(const mg_chunk *c, uintptr_t p, size_t n)
{
	return p < (uintptr_t)c->map.base + c->map.map_len &&
	       (uintptr_t)c->map.base < p + n;
}

const mg_span *mg_arena_span(const mg_arena *a)
{
	return &a->span;
}

int mg_arena_overlaps_range(mg_arena *a, uintptr_t p, size_t n)
{
	int hit = 0;

	if (p >= __atomic_load_n(&a->span.hi, __ATOMIC_ACQUIRE) ||
	    p + n <= __atomic_load_n(&a->span.lo, __ATOMIC_ACQUIRE))
		return 0;

	for (unsigned int s = 0; s < a->nshards && !hit; s++) {
		struct mg_shard *sh = &a->shards[s];
		(void)pthread_mutex_lock(&sh->mu);
		/* a spare chunk is on `all` too */
		for (unsigned int k = 0; k < MG_ARENA_CLASSES && !hit; k++)
			for (mg_chunk *c = sh->cls[k].all; c != NULL && !hit; c = c->link[ALL].next)
				hit = chunk_overlaps(c, p, n);
		(void)pthread_mutex_unlock(&sh->mu);
	}
	return hit;
}

int mg_arena_stats_get(mg_arena *a, mg_arena_stats *st)
{
	memset(st, 0, sizeof *st);
	for (unsigned int s = 0; s < a->nshards; s++) {
		struct mg_shard *sh = &a->shards[s];
		(void)pthread_mutex_lock(&sh->mu);
		st->chunks += sh->st.chunks;
		st->mapped += sh->st.mapped;
		st->locked += sh->st.locked;
		st->live += sh->st.live;
		st->quarantined += sh->st.quarantined;
		(void)pthread_mutex_unlock(&sh->mu);
	}
	return MG_OK;
}

int mg_arena_destroy(mg_arena *a)
{
	int st = MG_OK, saved = 0;

	for (unsigned int s = 0; s < a->nshards; s++) {
		struct mg_shard *sh = &a->shards[s];
		for (unsigned int k = 0; k < MG_ARENA_CLASSES; k++) {
			while (sh->cls[k].all != NULL) {
				if (release(sh, sh->cls[k].all) != MG_OK) {
					st = MG_EUNMAP;
					saved = errno;
				}
			}
		}
		mg_wipe(sh->rnd, sizeof sh->rnd);
		(void)pthread_mutex_destroy(&sh->mu);
	}
	free(a);
	errno = saved;
	return st;
}
