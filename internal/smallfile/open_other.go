//go:build !unix

package smallfile

const openFlags = 0
