// Package smallfile reads the small files an operator names on the command
// line, in the environment or in pipeline.yaml (the configuration, secret
// files, keys and certificates) with a bound on every read: the path must
// name a regular file (a FIFO, a device such as /dev/zero or a directory is
// refused before it is read), it is opened without blocking (a FIFO swapped
// in after the check cannot stall the open), checked again once open, and
// read up to a limit. Errors name the path, quoted, and never the content.
//
// It imports only the standard library.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Errors of Read and Check; the returned errors wrap one of them or the
// *fs.PathError's underlying error (fs.ErrNotExist, fs.ErrPermission).
var (
	ErrNotRegular = errors.New("smallfile: not a regular file")
	ErrTooLarge   = errors.New("smallfile: file too large")
)

// Read returns the content of the regular file at path (a symbolic link to
// one is followed, as Kubernetes mounts secrets), which must hold at most
// limit bytes. It reads at most limit+1 bytes whatever the file claims.
func Read(path string, limit int64) ([]byte, error) {
	// Stat first: a device is refused without being opened.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, pathError("open", path, err)
	}
	if err := check(path, fi, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, pathError("open", path, err)
	}
	defer f.Close()
	// What was opened may not be what Check saw.
	if fi, err = f.Stat(); err != nil {
		return nil, pathError("stat", path, err)
	}
	if err := check(path, fi, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, pathError("read", path, err)
	}
	if int64(len(b)) > limit {
		// A file that grew, or one whose size the kernel does not
		// report (/proc).
		return nil, fmt.Errorf("%w: %q holds more than %s", ErrTooLarge, path, Bytes(limit))
	}
	return b, nil
}

// Check reports whether path names a regular file of at most limit bytes,
// for files another library opens by name (nats.go reads the nkey seed
// file, TLS keys and certificates itself).
func Check(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return pathError("stat", path, err)
	}
	return check(path, fi, limit)
}

func check(path string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %q is %s", ErrNotRegular, path, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return fmt.Errorf("%w: %q holds %s, more than %s", ErrTooLarge, path, Bytes(fi.Size()), Bytes(limit))
	}
	return nil
}

// kind names a file type that is not regular.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// pathError re-states err of op on path with the path quoted, so that a
// path holding a newline or a control character is printed escaped.
func pathError(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s %q: %w", op, path, err)
}

// Bytes formats n bytes for an error: 1 MiB, 64 KiB, 1234 bytes.
func Bytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
