package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// EnvPrefix starts every variable supflow reads: the settings' (EnvName)
// and the others a caller declares to CheckEnv (credentials, switches).
const EnvPrefix = "SUPFLOW_"

// CheckEnv refuses the SUPFLOW_* variables of environ ("NAME=value"
// entries, as os.Environ returns them) that are neither a setting's
// variable (EnvName of a key) nor one of other, the variables that are
// not settings: as an unknown key in pipeline.yaml is refused, a
// misspelled variable must not be ignored. Each error names the variable
// (never its value) and the closest known variable.
func CheckEnv(environ, other []string) error {
	known := map[string]string{} // variable -> what it is, for suggestions
	for _, k := range Keys() {
		known[EnvName(k)] = k
	}
	for _, name := range other {
		known[name] = ""
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, ok := known[name]; ok {
			continue
		}
		msg := fmt.Sprintf("environment: %s is not a setting's variable nor one supflow reads otherwise", quoteName(name))
		if best := closestVar(name, known); best != "" {
			if key := known[best]; key != "" {
				best += " (" + key + ")"
			}
			msg += "; did you mean " + best + "?"
		}
		errs = append(errs, errors.New(msg+" (`supflow config keys` lists the settings' variables)"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

func closestVar(name string, known map[string]string) string {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	slices.Sort(names)
	return closest(name, names)
}

// quoteName shows a variable's name, escaped if it holds anything but
// letters, digits and '_'.
func quoteName(name string) string {
	if strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}) >= 0 {
		return fmt.Sprintf("%q", name)
	}
	return name
}
