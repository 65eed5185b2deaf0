//go:build unix

package smallfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadBounded covers each class of file Read may be given: regular
// files within and over the limit, files whose size the kernel does not
// report, devices, FIFOs, directories, links, missing files.
func TestReadBounded(t *testing.T) {
	dir := t.TempDir()
	put := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := put("ok", "0123456789")
	big := put("big", strings.Repeat("x", 11))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path string
		want       error
	}{
		{"regular at the limit", ok, nil},
		{"link to a regular file", link, nil},
		{"regular over the limit", big, ErrTooLarge},
		{"size not reported (/proc)", "/proc/self/status", ErrTooLarge},
		{"endless device", "/dev/zero", ErrNotRegular},
		{"FIFO without a writer", fifo, ErrNotRegular},
		{"directory", dir, ErrNotRegular},
		{"missing", filepath.Join(dir, "nope"), fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil && tt.want != fs.ErrNotExist {
				t.Skip(err)
			}
			b, err := Read(tt.path, 10)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Read = %d bytes, %v; want %v", len(b), err, tt.want)
			}
			if err == nil && string(b) != "0123456789" {
				t.Errorf("Read = %q", b)
			}
			if err != nil && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path", err)
			}
			if cerr := Check(tt.path, 10); tt.name != "size not reported (/proc)" && !errors.Is(cerr, tt.want) {
				t.Errorf("Check = %v, want %v", cerr, tt.want)
			}
		})
	}
}

// TestErrorsQuoteThePathNeverTheContent: a path with a newline is printed
// escaped, and no error repeats what the file holds.
func TestErrorsQuoteThePathNeverTheContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a\nb")
	if err := os.WriteFile(p, []byte("secret-Zq81-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error { _, err := Read(p, 4); return err }(),
		func() error { _, err := Read(p+"x", 4); return err }(),
	} {
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `a\nb`) {
			t.Errorf("error %q: want the path escaped", err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q repeats the content", err)
		}
	}
}
