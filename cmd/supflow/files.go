package main

import (
	"fmt"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/internal/smallfile"
)

// Bounds of the files supflow reads besides pipeline.yaml
// (config.MaxFileBytes): secrets (a *_FILE variable, an nkey seed, a
// .creds file, a TLS key) and certificates (a CA bundle may hold many).
const (
	maxSecretBytes = 64 << 10
	maxCertBytes   = 1 << 20
)

// checkFiles checks the files pipeline.yaml names for the servers this
// command connects to: each must be a regular file within its bound. The
// bus and store packages (and nats.go under them) read them by name, later;
// checking them here refuses a FIFO, a device or a huge file before
// anything starts, with exit code 2.
func checkFiles(cfg *config.Config) error {
	type file struct {
		key, path string
		limit     int64
	}
	var files []file
	if !cfg.Store.Embedded {
		files = append(files, file{"store.ca_file", cfg.Store.CAFile, maxCertBytes})
	}
	if !cfg.Bus.Embedded {
		files = append(files,
			file{"bus.nkey_file", cfg.Bus.NKeySeedFile, maxSecretBytes},
			file{"bus.creds_file", cfg.Bus.CredsFile, maxSecretBytes},
			file{"bus.key_file", cfg.Bus.KeyFile, maxSecretBytes},
			file{"bus.cert_file", cfg.Bus.CertFile, maxCertBytes},
			file{"bus.ca_file", cfg.Bus.CAFile, maxCertBytes})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := smallfile.Check(f.path, f.limit); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return nil
}
