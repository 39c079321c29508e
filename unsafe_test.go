package memguard

import "unsafe"

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func unsafePointerAdd[T any](p *T, off int) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(p), off) }
