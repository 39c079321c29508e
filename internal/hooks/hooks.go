// Package hooks gives memguard's own subpackages Buffer features that are
// not part of memguard's public API. Package memguard fills the variables
// in when it is initialised.
package hooks

// Seclude makes a *memguard.Buffer frozen and inaccessible (PROT_NONE)
// except while a WithData callback runs on it.
var Seclude func(buffer any) error
