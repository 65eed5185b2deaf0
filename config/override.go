package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Keys lists every settable key in dotted form (train.batch_size), sorted.
func Keys() []string {
	var keys []string
	walk(reflect.ValueOf(Default()).Elem(), "", func(key string, _ reflect.Value) { keys = append(keys, key) })
	sort.Strings(keys)
	return keys
}

// EnvName is the environment variable that overrides key:
// train.batch_size -> SUPFLOW_TRAIN_BATCH_SIZE.
func EnvName(key string) string {
	return "SUPFLOW_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Set applies one "key=value" override (the --set flag).
func Set(c *Config, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%w: --set %q: want key=value, e.g. train.epochs=3", ErrInvalid, kv)
	}
	return setKey(c, strings.TrimSpace(key), strings.TrimSpace(value), "--set")
}

func applyEnv(c *Config, env func(string) (string, bool)) error {
	var err error
	walk(reflect.ValueOf(c).Elem(), "", func(key string, _ reflect.Value) {
		if err != nil {
			return
		}
		if v, ok := env(EnvName(key)); ok {
			err = setKey(c, key, v, EnvName(key))
		}
	})
	return err
}

func setKey(c *Config, key, value, source string) error {
	var target reflect.Value
	walk(reflect.ValueOf(c).Elem(), "", func(k string, v reflect.Value) {
		if k == key {
			target = v
		}
	})
	if !target.IsValid() {
		return fmt.Errorf("%w: %s: unknown key %q (see `supflow config keys`)", ErrInvalid, source, key)
	}
	if !target.CanSet() { // inside an embedded struct of an unexported type
		return fmt.Errorf("%w: %s: %s cannot be overridden", ErrInvalid, source, key)
	}
	if err := parseInto(target, value); err != nil {
		return fmt.Errorf("%w: %s: %s: %v", ErrInvalid, source, key, err)
	}
	return nil
}

// keepDefaults gives every nil pointer setting of c its value in def. On a
// null (an empty "flip_p:") yaml.v3 leaves a plain field as it was but sets
// a pointer to nil; this makes null keep the default for both.
func keepDefaults(c, def *Config) {
	defaults := map[string]reflect.Value{}
	walk(reflect.ValueOf(def).Elem(), "", func(key string, v reflect.Value) { defaults[key] = v })
	walk(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		if v.Kind() == reflect.Pointer && v.IsNil() && v.CanSet() {
			v.Set(defaults[key])
		}
	})
}

// walk calls fn for every setting of v with its dotted yaml key, as yaml.v3
// lays the keys out: a struct field is a section (its fields' keys below
// its own), a ",inline" struct adds its fields' keys at its parent's level,
// and any other field is a setting. Fields yaml ignores (unexported, tagged
// "-") are skipped, as are untagged fields and fields that cannot hold a
// setting (interfaces, funcs, chans: dependencies, not configuration).
// An embedded struct of an unexported type can still be inlined, as in
// yaml.v3.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if (!sf.IsExported() && !sf.Anonymous) || name == "-" {
			continue
		}
		f := v.Field(i)
		if name == "" {
			if slices.Contains(strings.Split(opts, ","), "inline") && f.Kind() == reflect.Struct {
				walk(f, prefix, fn)
			}
			continue
		}
		switch f.Kind() {
		case reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if f.Kind() == reflect.Struct {
			walk(f, key, fn)
			continue
		}
		fn(key, f)
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func parseInto(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		// A setting whose nil means "the package's default" (augment's
		// flip_p): parse into a new value, leaving whatever the old pointer
		// is shared with untouched.
		p := reflect.New(v.Type().Elem())
		if err := parseInto(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true/false)", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case reflect.Slice, reflect.Array:
		parts := strings.Split(strings.Trim(s, "[]"), ",")
		if s == "" || s == "[]" {
			parts = nil
		}
		if v.Kind() == reflect.Array && len(parts) != v.Len() {
			return fmt.Errorf("%q: want %d comma-separated values", s, v.Len())
		}
		if v.Kind() == reflect.Slice {
			v.Set(reflect.MakeSlice(v.Type(), len(parts), len(parts)))
		}
		for i, p := range parts {
			if err := parseInto(v.Index(i), strings.TrimSpace(p)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unsupported field kind %s", v.Kind())
	}
	return nil
}
