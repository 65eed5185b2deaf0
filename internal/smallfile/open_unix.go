//go:build unix

package smallfile

import "syscall"

// openFlags opens a FIFO without waiting for a writer; Read then refuses it.
const openFlags = syscall.O_NONBLOCK
