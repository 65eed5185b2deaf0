package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/supflow/supflow/config"
)

func commands() map[string]command {
	return map[string]command{
		"version": {summary: "print the version", run: runVersion},
		"config":  {summary: "print the effective configuration (`config keys` lists every key)", run: runConfig},
	}
}

func runVersion(_ context.Context, e *env) error {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "supflow %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func runConfig(_ context.Context, e *env) error {
	if len(e.args) > 0 && e.args[0] == "keys" {
		for _, k := range config.Keys() {
			fmt.Fprintf(e.stdout, "%-28s %s\n", k, config.EnvName(k))
		}
		return nil
	}
	b, err := e.cfg.YAML()
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}
