package faulttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTally(t *testing.T) {
	tests := []struct {
		name             string
		dead             []uint64
		trained, dropped []uint64
		want             Account
	}{
		{"exact", nil, []uint64{0, 1, 2, 3}, nil, Account{Expected: 4, Received: 4}},
		{"dead-lettered as expected", []uint64{2}, []uint64{0, 1, 3}, []uint64{2}, Account{Expected: 4, Received: 4, Dropped: 1}},
		{"lost", nil, []uint64{0, 1, 3}, nil, Account{Expected: 4, Received: 3, Lost: 1}},
		{"dropped but should train", nil, []uint64{0, 1, 3}, []uint64{2}, Account{Expected: 4, Received: 4, Lost: 1}},
		{"trained twice", nil, []uint64{0, 1, 1, 2, 3}, nil, Account{Expected: 4, Received: 5, Duplicated: 1}},
		{"trained and dropped", []uint64{2}, []uint64{0, 1, 2, 3}, []uint64{2}, Account{Expected: 4, Received: 5, Duplicated: 1, Dropped: 1}},
		{"outside the epoch", nil, []uint64{0, 1, 2, 3, 9}, nil, Account{Expected: 4, Received: 5, Extra: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tally(4, tt.dead, tt.trained, tt.dropped)
			if got != tt.want {
				t.Errorf("Tally = %+v, want %+v", got, tt.want)
			}
			if got.OK() != (tt.want.Lost == 0 && tt.want.Duplicated == 0 && tt.want.Extra == 0) {
				t.Errorf("OK() = %v", got.OK())
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	rows := []Row{{Case: "a|b", Injected: "x\ny", Reports: 2, Account: Account{Expected: 10, Received: 10}, Pass: true}}
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || lines[2] != `| a\|b | x y | 2 | 10 | 10 | 0 | 0 | 0 | pass |  |` {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestWriteSection: a section is appended once, then replaced in place;
// the text around it and sections() keep it for the suite's own rewrite.
func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte("# Doc\n\ntable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"first\n", "second\n"} {
		if err := WriteSection(path, "ha", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Doc\n\ntable\n\n<!-- begin ha (generated) -->\nsecond\n<!-- end ha -->\n"
	if string(b) != want {
		t.Errorf("document:\n%q\nwant\n%q", b, want)
	}
	if got := sections(path); got != "\n<!-- begin ha (generated) -->\nsecond\n<!-- end ha -->\n" {
		t.Errorf("sections = %q", got)
	}
}
