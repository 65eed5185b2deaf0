//go:build cgo

package device

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/xla/device/internal/fakeapi"
)

// TestCompatLayout checks layout against go-xla's own PJRT header: the
// slot of Execute in PJRT_Api, the offset of the options in
// PJRT_LoadedExecutable_Execute_Args and the PJRT_Api fields before the
// first function pointer.
func TestCompatLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gomlx/go-xla").Output()
	if err != nil {
		t.Fatalf("locate go-xla: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "pkg", "pjrt", "pjrt_c_api.h"))
	if err != nil {
		t.Fatal(err)
	}
	header := string(raw)
	body := func(start, end string) string {
		i := strings.Index(header, start)
		j := strings.Index(header[i:], end)
		if i < 0 || j < 0 {
			t.Fatalf("no %q ... %q in the header", start, end)
		}
		return header[i+len(start) : i+j]
	}
	api := body("typedef struct PJRT_Api {", "} PJRT_Api;")
	var slotsNames []string
	for _, m := range regexp.MustCompile(`_PJRT_API_STRUCT_FIELD\((\w+)\)`).FindAllStringSubmatch(api, -1) {
		slotsNames = append(slotsNames, m[1])
	}
	if got := slices.Index(slotsNames, "PJRT_LoadedExecutable_Execute"); got != layout.executeSlot {
		t.Errorf("Execute is slot %d, layout says %d", got, layout.executeSlot)
	}
	if len(slotsNames) > 256 {
		t.Errorf("PJRT_Api has %d functions, compat.go widens 256", len(slotsNames))
	}
	fields := func(b string) []string {
		var out []string
		for line := range strings.SplitSeq(b, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "//") {
				continue
			}
			out = append(out, line)
		}
		return out
	}
	// struct_size, extension_start, then the 24-byte version struct.
	if head := fields(api)[:3]; head[0] != "size_t struct_size;" || head[1] != "PJRT_Extension_Base* extension_start;" ||
		head[2] != "PJRT_Api_Version pjrt_api_version;" || layout.fnOffset != 8+8+24 {
		t.Errorf("PJRT_Api starts %q, layout says %d bytes before the functions", head, layout.fnOffset)
	}
	version := fields(body("struct PJRT_Api_Version {", "};"))
	if !slices.Equal(version, []string{"size_t struct_size;", "PJRT_Extension_Base* extension_start;", "int major_version;  // out", "int minor_version;  // out"}) {
		t.Errorf("PJRT_Api_Version is %q, not 24 bytes as layout assumes", version)
	}
	// Every field before options is a pointer or a size_t: 8 bytes each.
	exec := fields(body("struct PJRT_LoadedExecutable_Execute_Args {", "};"))
	if i := slices.Index(exec, "PJRT_ExecuteOptions* options;"); i*8 != layout.optionsOffset {
		t.Errorf("Execute_Args fields %q: options at field %d, layout says offset %d", exec, i, layout.optionsOffset)
	}
}

// TestWidenedTable: through the widened table every call gets a
// zero-extended copy of its struct (struct_size the wide size) and its
// outputs come back, while a field the plugin writes past the caller's
// struct lands in the copy; Execute also gets zero-extended options with
// the caller's fields, and the caller's options pointer is put back.
func TestWidenedTable(t *testing.T) {
	l := fakeapi.Layout{FnOffset: layout.fnOffset, ExecuteSlot: layout.executeSlot, OptionsOffset: layout.optionsOffset}
	slots := 120 // a newer plugin's longer table
	table, err := widenAPI(fakeapi.Table(layout.fnOffset+8*slots, l))
	if err != nil {
		t.Fatal(err)
	}
	got := fakeapi.Execute(table, layout.executeSlot)
	if got.ArgsSize != 1024 || got.OptionsSize != 1024 || got.LaunchID != 7 || got.TailNonzero != 0 || !got.Restored {
		t.Fatalf("Execute through the widened table: %+v", got)
	}
	for _, slot := range []int{0, 96, slots - 1} {
		argsSize, out, intact := fakeapi.Call(table, slot)
		if argsSize != 1024 || out != 4242 || !intact {
			t.Fatalf("slot %d through the widened table: size %d, output %d, bytes after the struct intact %v", slot, argsSize, out, intact)
		}
	}
	if _, err := widenAPI(fakeapi.Table(layout.fnOffset+8*layout.executeSlot, l)); err == nil {
		t.Fatal("a table without the Execute slot was widened")
	}
}
