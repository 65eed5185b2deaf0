package train

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FormatIDs writes ascending sample ids compactly as comma-separated runs:
// "0-5,7,9-599". Only strictly consecutive ids join a run, so a repeated id
// stays visible ("3,3"). The trainer logs an epoch's exact sets this way,
// small when the set is whole.
func FormatIDs(ids []uint64) string {
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(ids[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(ids[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// ParseIDs reads what FormatIDs wrote.
func ParseIDs(s string) ([]uint64, error) {
	if s == "" {
		return nil, nil
	}
	var ids []uint64
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRun := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("train: sample ids %q: %w", s, err)
		}
		b := a
		if isRun {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil {
				return nil, fmt.Errorf("train: sample ids %q: %w", s, err)
			}
			if b <= a {
				return nil, fmt.Errorf("train: sample ids %q: %w", s, errors.New("run "+part+" does not ascend"))
			}
		}
		for id := a; ; id++ {
			ids = append(ids, id)
			if id == b {
				break
			}
		}
	}
	return ids, nil
}
