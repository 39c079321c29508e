//go:build cgo

package memguard

import "sync"

// registry tracks the state of every live Buffer so that Purge can reach
// them all. Adding and removing are O(1): each state remembers its slot,
// and removal moves the last entry into the hole.
type registry struct {
	mu     sync.Mutex
	states []*bufferState
}

var buffers registry

func (r *registry) add(b *bufferState) {
	r.mu.Lock()
	b.slot = int32(len(r.states))
	r.states = append(r.states, b)
	r.mu.Unlock()
}

func (r *registry) remove(b *bufferState) {
	r.mu.Lock()
	last := len(r.states) - 1
	moved := r.states[last]
	r.states[b.slot] = moved
	moved.slot = b.slot
	r.states[last] = nil
	r.states = r.states[:last]
	b.slot = -1
	r.mu.Unlock()
}

// snapshot copies the live set, so callers can act on each Buffer without
// holding the registry's lock (destroying one removes it from here).
func (r *registry) snapshot() []*bufferState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bufferState(nil), r.states...)
}
