package train

import (
	"slices"
	"testing"
)

func TestFormatParseIDs(t *testing.T) {
	for _, tc := range []struct {
		ids  []uint64
		want string
	}{
		{nil, ""},
		{[]uint64{7}, "7"},
		{[]uint64{0, 1, 2, 3}, "0-3"},
		{[]uint64{0, 1, 2, 4, 6, 7}, "0-2,4,6-7"},
		{[]uint64{3, 3, 4}, "3,3-4"},
	} {
		got := FormatIDs(tc.ids)
		if got != tc.want {
			t.Errorf("FormatIDs(%v) = %q, want %q", tc.ids, got, tc.want)
		}
		back, err := ParseIDs(got)
		if err != nil || !slices.Equal(back, tc.ids) {
			t.Errorf("ParseIDs(%q) = %v, %v; want %v", got, back, err, tc.ids)
		}
	}
	for _, bad := range []string{"x", "1-", "5-3", "1,,2", "-4"} {
		if _, err := ParseIDs(bad); err == nil {
			t.Errorf("ParseIDs(%q) accepted", bad)
		}
	}
}
