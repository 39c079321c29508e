// Package procfs reads the kernel settings the library and its tests
// depend on.
package procfs

import (
	"os"
	"strconv"
	"strings"
)

// MaxMapCount is vm.max_map_count, the most mappings a process may have,
// or 0 where it cannot be read (it is Linux's).
func MaxMapCount() int {
	data, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
