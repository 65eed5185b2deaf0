package sysmem

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/supflow/supflow/internal/smallfile"
)

// Total is the machine's RAM (sysinfo), lowered to the cgroup's
// memory limit when there is one (v2 memory.max, v1
// memory.limit_in_bytes).
func Total() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if lim := cgroupLimit(); lim > 0 && (total == 0 || lim < total) {
		total = lim
	}
	return total
}

func cgroupLimit() uint64 {
	var files []string
	if b, err := smallfile.Read("/proc/self/cgroup", 64<<10); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// v2: "0::/path"; v1: "N:memory:/path".
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				files = append(files, filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"))
			case strings.Contains(","+parts[1]+",", ",memory,"):
				files = append(files, filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			}
		}
	}
	files = append(files, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, f := range files {
		b, err := smallfile.Read(f, 64)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < 1<<62 {
			return n
		}
	}
	return 0
}
