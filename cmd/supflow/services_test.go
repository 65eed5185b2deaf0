package main

import (
	"testing"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
)

// TestTopologyStorage: bus.storage auto (the default) puts the image and
// view streams in memory on the embedded server, whose store dies with the
// process, and in files on any other; the decode tasks are always in files.
func TestTopologyStorage(t *testing.T) {
	tests := []struct {
		storage  string
		embedded bool
		memory   bool
	}{
		{bus.StorageAuto, true, true},
		{bus.StorageAuto, false, false},
		{bus.StorageFile, true, false},
		{bus.StorageMemory, false, true},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.Bus.Storage, cfg.Bus.Embedded = tt.storage, tt.embedded
		for i, e := range topology(cfg).Edges {
			if want := tt.memory && i > 0; e.Memory != want {
				t.Errorf("storage %s, embedded %v: stream %s in memory %v, want %v", tt.storage, tt.embedded, e.Topic, e.Memory, want)
			}
		}
	}
}
