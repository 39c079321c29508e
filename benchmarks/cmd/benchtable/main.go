// Command benchtable runs the side-by-side benchmarks against
// github.com/awnumar/memguard and prints one table: our time, the peer's,
// the ratio, and the project's target. Libraries alternate within each
// round, and each cell is the median of the rounds. Run it with
// `make bench`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/securememory/memguard/benchmarks"
)

func main() {
	testing.Init()
	rounds := flag.Int("rounds", 5, "rounds per operation; each cell is the median")
	benchtime := flag.Duration("benchtime", 300*time.Millisecond, "time per measurement")
	secrets := flag.Int("secrets", 10000, "live secrets for the memory measurement")
	footprint := flag.String("footprint", "", "internal: measure one library's footprint and print it as JSON")
	scale := flag.Int("compact-scale", 0, "internal: time that many compact secrets' phases and print them as JSON")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fail(err)
	}
	if *scale > 0 {
		sc, err := benchmarks.MeasureCompactScale(*scale)
		if err != nil {
			fail(err)
		}
		json.NewEncoder(os.Stdout).Encode(sc)
		return
	}
	if *footprint != "" {
		f, err := benchmarks.MeasureFootprint(*footprint, *secrets)
		if err != nil {
			fail(err)
		}
		json.NewEncoder(os.Stdout).Encode(f)
		return
	}

	fmt.Printf("machine: %s, %d CPUs, %s, %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("method: %d rounds, libraries alternating, median of each; %v per measurement\n\n", *rounds, *benchtime)
	speed(*rounds)
	fmt.Println()
	options(*rounds)
	fmt.Println()
	purgeScaling(*rounds)
	fmt.Println()
	memory(*secrets)
}

func speed(rounds int) {
	ours := make([][]float64, len(benchmarks.Ops))
	peer := make([][]float64, len(benchmarks.Ops))
	floor := make([][]float64, len(benchmarks.Ops))
	for r := 0; r < rounds; r++ {
		for i, op := range benchmarks.Ops {
			first, second := op.Ours, op.Peer
			if r%2 == 1 {
				first, second = second, first
			}
			a, b := nsPerOp(first), nsPerOp(second)
			if r%2 == 1 {
				a, b = b, a
			}
			ours[i], peer[i] = append(ours[i], a), append(peer[i], b)
			if op.Floor != nil {
				floor[i] = append(floor[i], nsPerOp(op.Floor))
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, rounds)
	}
	fmt.Println("| operation | ours | peer | peer/ours | target | |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	for i, op := range benchmarks.Ops {
		o, p := median(ours[i]), median(peer[i])
		ratio, gbps := p/o, float64(op.Bytes)/o
		verdict := "meets"
		if !meets(op, ratio, gbps) {
			verdict = "**misses**"
		}
		fmt.Printf("| %s | %s | %s | %.2f× | %s | %s |\n", op.Name, timeCell(o, op.Bytes), duration(p), ratio, target(op), verdict)
	}
	fmt.Println()
	fmt.Println("| floor: what any implementation must do (floors.go) | floor | peer/floor: best reachable | target |")
	fmt.Println("|---|---:|---:|---:|")
	for i, op := range benchmarks.Ops {
		if op.Floor == nil {
			continue
		}
		f := median(floor[i])
		fmt.Printf("| %s | %s | %.2f× | %s |\n", op.Name, timeCell(f, op.Bytes), median(peer[i])/f, target(op))
	}
	fmt.Println()
	fmt.Println("| plain-Go reference | time |")
	fmt.Println("|---|---:|")
	for _, ref := range benchmarks.References {
		fmt.Printf("| %s | %s |\n", ref.Name, timeCell(nsPerOp(ref.Run), ref.Bytes))
	}
}

// timeCell is a time per operation, with the throughput it gives if the
// operation handles bytes (B/ns is GB/s).
func timeCell(ns float64, bytes int64) string {
	if bytes == 0 {
		return duration(ns)
	}
	return fmt.Sprintf("%s (%.2f GB/s)", duration(ns), float64(bytes)/ns)
}

// meets reports whether a ratio and a throughput reach op's target.
func meets(op benchmarks.Op, ratio, gbps float64) bool {
	return ratio >= op.Target && gbps >= op.MinGBps
}

// target is op's target as docs/DESIGN.md writes it.
func target(op benchmarks.Op) string {
	t := fmt.Sprintf("≥ %g×", op.Target)
	if op.MinGBps > 0 {
		t += fmt.Sprintf(", ≥ %g GB/s", op.MinGBps)
	}
	return t
}

// options compares each option's row with the same operation on an
// ordinary Buffer, alternating which goes first in each round.
func options(rounds int) {
	opt := make([][]float64, len(benchmarks.OptionOps))
	ord := make([][]float64, len(benchmarks.OptionOps))
	for r := 0; r < rounds; r++ {
		for i, op := range benchmarks.OptionOps {
			if r%2 == 0 {
				opt[i] = append(opt[i], nsPerOp(op.Option))
				ord[i] = append(ord[i], nsPerOp(op.Ordinary))
			} else {
				ord[i] = append(ord[i], nsPerOp(op.Ordinary))
				opt[i] = append(opt[i], nsPerOp(op.Option))
			}
		}
	}
	fmt.Println("| with an option (ours) | option | ordinary | option/ordinary | target | |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	for i, op := range benchmarks.OptionOps {
		o, p := median(opt[i]), median(ord[i])
		fmt.Printf("| %s | %s | %s | %.2f× | %s | %s |\n", op.Name, duration(o), duration(p), o/p, optionTarget(op), optionVerdict(op, o, p))
	}
}

// optionTarget is an option row's target, or "reported" where it has none.
func optionTarget(op benchmarks.OptionOp) string {
	switch {
	case op.MaxRatio > 0:
		return fmt.Sprintf("≤ %g× ordinary", op.MaxRatio)
	case op.MaxNs > 0:
		return "≤ " + duration(op.MaxNs)
	}
	return "reported"
}

// optionVerdict says whether an option row's time o, against the ordinary
// p, meets its target.
func optionVerdict(op benchmarks.OptionOp, o, p float64) string {
	if (op.MaxRatio > 0 && o/p > op.MaxRatio) || (op.MaxNs > 0 && o > op.MaxNs) {
		return "**misses**"
	}
	if op.MaxRatio == 0 && op.MaxNs == 0 {
		return ""
	}
	return "meets"
}

// purgeScaling shows that Purge costs the same per buffer with ten times
// as many buffers: its work is linear in their number.
func purgeScaling(rounds int) {
	fmt.Println("| Purge (ours) | time | per buffer |")
	fmt.Println("|---|---:|---:|")
	for _, n := range []int{1000, 10000} {
		var times []float64
		for r := 0; r < rounds; r++ {
			times = append(times, nsPerOp(benchmarks.OursPurge(n)))
		}
		t := median(times)
		fmt.Printf("| %d live buffers | %s | %s |\n", n, duration(t), duration(t/float64(n)))
	}
}

func memory(n int) {
	fmt.Printf("| %d live 32-byte secrets | RSS per secret | locked per secret | mappings per secret |\n", n)
	fmt.Println("|---|---:|---:|---:|")
	for _, lib := range []string{"ours", "compact", "peer"} {
		out, err := exec.Command(os.Args[0], "-footprint", lib, "-secrets", fmt.Sprint(n)).Output()
		if err != nil {
			fail(fmt.Errorf("footprint of %s: %v", lib, err))
		}
		var f benchmarks.Footprint
		if err := json.Unmarshal(out, &f); err != nil {
			fail(err)
		}
		per := func(v int64) float64 { return float64(v) / float64(f.Secrets) }
		fmt.Printf("| %s | %.2f KiB | %.2f KiB | %.2f |\n", lib, per(f.RSSBytes)/1024, per(f.LockedBytes)/1024, per(f.Mappings))
	}
	coffer, openMaps, openLocked, err := benchmarks.MeasureCofferAndOpen()
	if err != nil {
		fail(err)
	}
	fmt.Printf("\nA Coffer locks %d bytes (target: at most one page, %d). One live Open result adds %d mappings and %d locked bytes (target: one region).\n",
		coffer, os.Getpagesize(), openMaps, openLocked)
	fmt.Println("Targets: RSS per live 32-byte secret ≤ 4.5 KiB.")
	compactScale()
}

// compactScale measures a million live 32-byte compact secrets, each in a
// fresh process: the footprint, then the time to create, verify and purge
// them.
func compactScale() {
	const n = 1_000_000
	out, err := exec.Command(os.Args[0], "-footprint", "compact", "-secrets", fmt.Sprint(n)).Output()
	if err != nil {
		fail(fmt.Errorf("compact footprint: %v", err))
	}
	var f benchmarks.Footprint
	if err := json.Unmarshal(out, &f); err != nil {
		fail(err)
	}
	out, err = exec.Command(os.Args[0], "-compact-scale", fmt.Sprint(n)).Output()
	if err != nil {
		fail(fmt.Errorf("compact scale: %v", err))
	}
	var sc benchmarks.CompactScale
	if err := json.Unmarshal(out, &sc); err != nil {
		fail(err)
	}
	per := func(v int64) float64 { return float64(v) / float64(f.Secrets) }
	fmt.Printf("\n| %d live 32-byte compact secrets | measured | target |\n", n)
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| locked per secret | %.1f B | ≤ 64 B |\n", per(f.LockedBytes))
	fmt.Printf("| RSS per secret (handle, state, cleanup, registry included) | %.1f B | ≤ 320 B |\n", per(f.RSSBytes))
	fmt.Printf("| mappings, all | %d | ≤ 1000 |\n", f.Mappings)
	fmt.Printf("| create (NewBufferFromBytes) | %v | ≤ 1 s |\n", sc.Create.Round(time.Millisecond))
	fmt.Printf("| verify each (Verify) | %v | ≤ 1 s |\n", sc.Verify.Round(time.Millisecond))
	fmt.Printf("| purge all (Purge) | %v | ≤ 1 s |\n", sc.Purge.Round(time.Millisecond))
}

func nsPerOp(fn func(*testing.B)) float64 {
	r := testing.Benchmark(fn)
	if r.N == 0 {
		fail(fmt.Errorf("benchmark did not run"))
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func duration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f ns", ns)
	}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}
