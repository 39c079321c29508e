package benchmarks

import (
	"strings"
	"testing"
)

// BenchmarkOps runs every row for both libraries, for use with benchstat:
// go test -bench . -count 10 | benchstat -col /lib -
func BenchmarkOps(b *testing.B) {
	for _, op := range Ops {
		name := strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(op.Name)
		b.Run(name+"/lib=ours", op.Ours)
		b.Run(name+"/lib=peer", op.Peer)
		if op.Floor != nil {
			b.Run(name+"/lib=floor", op.Floor)
		}
	}
	for _, op := range OptionOps {
		name := strings.NewReplacer(" ", "_", "(", "", ")", "", ",", "").Replace(op.Name)
		b.Run(name+"/lib=option", op.Option)
		b.Run(name+"/lib=ordinary", op.Ordinary)
	}
	for _, ref := range References {
		b.Run(strings.ReplaceAll(ref.Name, " ", "_")+"/lib=go", ref.Run)
	}
}
