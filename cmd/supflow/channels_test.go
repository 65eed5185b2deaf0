package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
)

// TestChannelsFit: decode.gray must agree with the data set's channels, or
// every view is refused by the trainer (found with decode.gray false on
// MNIST: 200 of 200 samples dead-lettered, then the evaluation failed); the
// refusal is a usage error that names the key and the value to set.
func TestChannelsFit(t *testing.T) {
	for _, tt := range []struct {
		gray     bool
		channels int
		ok       bool
	}{{true, 1, true}, {false, 3, true}, {false, 1, false}, {true, 3, false}} {
		cfg := config.Default()
		cfg.Decode.Gray = tt.gray
		err := channelsFit(cfg, "b", dataset.Info{Channels: tt.channels})
		if tt.ok != (err == nil) {
			t.Errorf("gray %v, %d channels: %v", tt.gray, tt.channels, err)
			continue
		}
		if err != nil && (!errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "decode.gray")) {
			t.Errorf("gray %v, %d channels: %v, want a usage error naming decode.gray", tt.gray, tt.channels, err)
		}
	}
}
