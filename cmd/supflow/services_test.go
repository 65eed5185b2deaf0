package main

import (
	"testing"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
)

// TestTopologyStorage: bus.storage auto (the default) puts the image and
// view streams in memory on this process's embedded server, whose store
// dies with the process, and in files on any other; the decode tasks are
// always in files.
func TestTopologyStorage(t *testing.T) {
	emb, _, err := bus.StartPrivate(t.Context(), "topology", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	tests := []struct {
		storage string
		emb     *bus.Embedded
		memory  bool
	}{
		{bus.StorageAuto, emb, true},
		{bus.StorageAuto, nil, false},
		{bus.StorageFile, emb, false},
		{bus.StorageMemory, nil, true},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.Bus.Storage = tt.storage
		cfg.Bus.MaxBytes = 1 << 20 // streams any machine's server has the memory for
		for i, e := range topology(cfg, tt.emb).Edges {
			if want := tt.memory && i > 0; e.Memory != want {
				t.Errorf("storage %s, embedded %v: stream %s in memory %v, want %v", tt.storage, tt.emb != nil, e.Topic, e.Memory, want)
			}
		}
	}
}
