//go:build cgo

package memguard

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// memRange is [start, end) of the process's address space.
type memRange struct{ start, end uintptr }

func rangeOf(p unsafe.Pointer, n uintptr) memRange {
	return memRange{uintptr(p), uintptr(p) + n}
}

func (a memRange) overlaps(b memRange) bool { return a.start < b.end && b.start < a.end }

// rangeSet is a small set of ranges. It is empty but for moments, so a
// look-up first reads one atomic count and takes no lock.
type rangeSet struct {
	mu     sync.Mutex
	n      atomic.Int32
	ranges []memRange
}

func (s *rangeSet) add(r memRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ranges = append(s.ranges, r)
	s.n.Store(int32(len(s.ranges)))
}

func (s *rangeSet) remove(r memRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.ranges {
		if s.ranges[i] == r {
			last := len(s.ranges) - 1
			s.ranges[i] = s.ranges[last]
			s.ranges = s.ranges[:last]
			break
		}
	}
	s.n.Store(int32(len(s.ranges)))
}

func (s *rangeSet) overlaps(r memRange) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.ranges {
		if x.overlaps(r) {
			return true
		}
	}
	return false
}

// wipedMemory holds the data of Buffers that Purge wiped under a user and
// that are not freed yet: a source read from there is zeros. It is empty
// but for the moments between such a Purge and the users' leaving.
var wipedMemory rangeSet

// ownsMemory reports whether r lies in the data of a live Buffer. It walks
// the registry: it is for a rare path, never a hot one.
func ownsMemory(r memRange) bool {
	for _, s := range buffers.snapshot() {
		s.protMu.Lock()
		m, ok := s.memoryRange()
		s.protMu.Unlock()
		if ok && m.overlaps(r) {
			return true
		}
	}
	return false
}

func (r *region) dataPages() memRange {
	return rangeOf(unsafe.Pointer(r.pages), uintptr(r.pages_len))
}
