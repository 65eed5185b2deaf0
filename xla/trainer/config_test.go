package trainer

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		c    Config
		want string // "" = valid
	}{
		{Config{}, ""},
		{DefaultConfig(), ""},
		{Config{Backend: BackendXLA, Plugin: "/p.so", Devices: 1}, ""},
		{Config{Backend: "gpu"}, "backend"},
		{Config{Backend: BackendXLA, Devices: 2, SyncBN: true}, ""},
		{Config{Devices: -1}, "devices"},
	} {
		err := tt.c.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
}
