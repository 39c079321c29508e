//go:build cgo

package memguard

// A Buffer's memory is a region of its own (guarded storage) or a slot of
// the compact arena, held by value in the state so that a compact Buffer
// is no heap object more than an ordinary one. The data slice and the
// canary check next to it (canaryIntact) are plain fields on the hot path;
// the cold operations below choose by s.compact, set at creation.

// alloc gives the state memory for size bytes stored as st, from the
// backend st chooses, and points data at it.
func (s *bufferState) alloc(size int, st storage) error {
	st, err := st.sized(size)
	if err != nil {
		return err
	}
	if st.compact != notCompact {
		if err := allocCompact(&s.arenaSlot, size, st); err != nil {
			return err
		}
		s.compact = true
		return nil
	}
	r, err := allocRegion(size, st)
	if err != nil {
		return err
	}
	s.region = r
	return nil
}

// verifyMemory is the full check of the canaries and padding. The caller
// holds rw, and a secluded Buffer's pages are readable.
func (s *bufferState) verifyMemory() error {
	if s.compact {
		return s.arenaSlot.verify()
	}
	return s.region.verify()
}

// lockedMemory reports whether the memory is locked in RAM. The caller
// holds rw.
func (s *bufferState) lockedMemory() bool {
	if s.compact {
		return s.arenaSlot.lockedBytes() > 0
	}
	return s.region.lockedBytes() > 0
}

// releaseSlot frees a compact Buffer's slot, if it still holds one, through
// the compact backend, and keeps what freeing found for the next Destroy to
// report, as release does for a region. It reports whether there was a
// slot. The caller holds rw for writing and protMu: once the slot is zero
// under protMu, Purge's wipe of a busy Buffer no longer touches it, and
// its bytes may already be another secret's.
func (s *bufferState) releaseSlot() bool {
	if !s.arenaSlot.held() {
		return false
	}
	// A Buffer that Purge wiped under its users goes to the core, not
	// the cache (release says why).
	s.noteFree(releaseCompact(&s.arenaSlot, !s.flag(flagWiped)))
	return true
}

// memoryRange is the memory the Buffer's data lives in, if it holds any:
// its region's data pages, or its slot. The caller holds protMu.
func (s *bufferState) memoryRange() (memRange, bool) {
	switch {
	case s.region != nil:
		return s.region.dataPages(), true
	case s.arenaSlot.held():
		return s.arenaSlot.span(), true
	}
	return memRange{}, false
}
