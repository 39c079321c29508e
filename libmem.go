//go:build cgo

package memguard

import (
	"sync"
	"unsafe"
)

// memRange is [start, end) of the process's address space.
type memRange struct{ start, end uintptr }

func rangeOf(p unsafe.Pointer, n uintptr) memRange {
	return memRange{uintptr(p), uintptr(p) + n}
}

func (a memRange) overlaps(b memRange) bool { return a.start < b.end && b.start < a.end }

// rangeSet finds the ranges that overlap a given one: each range is filed
// under every granule (an aligned span of granuleSize bytes) it touches, so
// a look-up reads one short list per granule of what it asks about.
// Adding and removing cost one map update per granule.
type rangeSet struct {
	mu     sync.Mutex
	byGran map[uintptr][]memRange
}

const granuleSize = 1 << 20

func granules(r memRange) (first, last uintptr) {
	return r.start / granuleSize, (r.end - 1) / granuleSize
}

func (s *rangeSet) add(r memRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byGran == nil {
		s.byGran = make(map[uintptr][]memRange)
	}
	first, last := granules(r)
	for g := first; g <= last; g++ {
		s.byGran[g] = append(s.byGran[g], r)
	}
}

func (s *rangeSet) remove(r memRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := granules(r)
	for g := first; g <= last; g++ {
		list := s.byGran[g]
		for i := range list {
			if list[i] == r {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(s.byGran, g)
		} else {
			s.byGran[g] = list
		}
	}
}

func (s *rangeSet) overlaps(r memRange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := granules(r)
	for g := first; g <= last; g++ {
		for _, x := range s.byGran[g] {
			if x.overlaps(r) {
				return true
			}
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
