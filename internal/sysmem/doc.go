// Package sysmem tells how much memory this process may use: the
// machine's RAM, lowered to its cgroup's limit inside a container. Only
// commands call it (libraries are given the figure), so that a
// configuration too large for the machine is refused before anything
// starts.
package sysmem
