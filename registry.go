//go:build cgo

package memguard

import "sync"

// registry tracks every live Buffer so that Purge can reach them all. Adding
// and removing are O(1): each Buffer remembers its slot, and removal moves
// the last entry into the hole.
type registry struct {
	mu      sync.Mutex
	buffers []*Buffer
}

var buffers registry

func (r *registry) add(b *Buffer) {
	r.mu.Lock()
	b.slot = len(r.buffers)
	r.buffers = append(r.buffers, b)
	r.mu.Unlock()
}

func (r *registry) remove(b *Buffer) {
	r.mu.Lock()
	last := len(r.buffers) - 1
	moved := r.buffers[last]
	r.buffers[b.slot] = moved
	moved.slot = b.slot
	r.buffers[last] = nil
	r.buffers = r.buffers[:last]
	b.slot = -1
	r.mu.Unlock()
}

// snapshot copies the live set, so callers can act on each Buffer without
// holding the registry's lock (destroying one removes it from here).
func (r *registry) snapshot() []*Buffer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Buffer(nil), r.buffers...)
}
