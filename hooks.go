//go:build cgo

package memguard

import "github.com/securememory/memguard/internal/hooks"

func init() {
	hooks.Seclude = func(v any) error {
		b, ok := v.(*Buffer)
		if !ok {
			return ErrInvalidArgument
		}
		s := b.state()
		if s == nil {
			return ErrDestroyed
		}
		return s.seclude()
	}
}
