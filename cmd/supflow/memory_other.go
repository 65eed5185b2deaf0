//go:build !linux

package main

// totalMemory is unknown off Linux: nothing is refused for its size.
func totalMemory() uint64 { return 0 }
