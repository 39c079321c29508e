package main

// sealAndOpen is filled in once enclaves exist.
func sealAndOpen() error { return nil }
