package main

import (
	"fmt"
	"strings"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/internal/smallfile"
	"github.com/supflow/supflow/store"
)

// secretVars are the credential variables. Each may instead be given as a
// file named by <NAME>_FILE, the way docker compose and Kubernetes mount
// secrets, so the value never sits in the environment.
var secretVars = []string{
	store.EnvAccessKey, store.EnvSecretKey, store.EnvSessionToken,
	store.EnvAWSAccessKey, store.EnvAWSSecretKey, store.EnvAWSToken,
	bus.EnvUser, bus.EnvPassword, bus.EnvToken,
}

// secretEnv returns getenv with every credential variable resolved, from
// the variable itself or from its _FILE (one trailing newline dropped), a
// regular file of at most maxSecretBytes (internal/smallfile). Errors name
// the variable and file, never the content.
func secretEnv(getenv func(string) string) (func(string) string, error) {
	vals := make(map[string]string, len(secretVars))
	for _, name := range secretVars {
		v, file := getenv(name), getenv(name+"_FILE")
		if file != "" {
			if v != "" {
				return nil, fmt.Errorf("both %s and %s_FILE are set: use one", name, name)
			}
			b, err := smallfile.Read(file, maxSecretBytes)
			if err != nil {
				return nil, fmt.Errorf("%s_FILE: %w", name, err)
			}
			if v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"); v == "" {
				return nil, fmt.Errorf("%s_FILE: %q is empty", name, file)
			}
		}
		vals[name] = v
	}
	return func(k string) string {
		if v, ok := vals[k]; ok {
			return v
		}
		return getenv(k)
	}, nil
}
