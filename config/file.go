package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/supflow/supflow/internal/smallfile"
)

// MaxFileBytes bounds pipeline.yaml: Load refuses a larger file from its
// size, and never reads more than this many bytes (the repository's file,
// comments included, is under 20 KiB).
const MaxFileBytes = 1 << 20

// readFile reads pipeline.yaml: a regular file of at most MaxFileBytes
// (see internal/smallfile: a FIFO or a device is refused unread).
func readFile(path string) ([]byte, error) {
	b, err := smallfile.Read(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %w", ErrInvalid, err)
	}
	return b, nil
}

// decode merges one YAML document onto c. The file is checked against the
// keys before it is decoded, so that every error names a key and a line
// and column but never repeats what the file holds: a file given by
// mistake (a secret file as --config) is not echoed. It refuses unknown
// and repeated keys, a second document, a section that is not a mapping,
// values of the wrong type, and decimal numbers for integer settings
// (yaml.v3 would truncate 8.99 to 8, which --set and the environment
// refuse).
func (c *Config) decode(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // empty, or comments only
	} else if err != nil {
		return syntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return syntaxError(err)
	case !isNull(&next):
		return fmt.Errorf("line %d: a second YAML document: pipeline.yaml is one document (remove the '---' line and what follows, or merge them)", next.Line)
	}
	if err := checkDocument(&doc, c); err != nil {
		return err
	}
	strict := yaml.NewDecoder(bytes.NewReader(b))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		// checkDocument found nothing, so this is a case it does not
		// know; yaml.v3's messages may quote the file.
		return errors.New(scrub(err.Error()))
	}
	return nil
}

// isNull reports whether a document node holds nothing (a bare '---').
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.DocumentNode && (len(n.Content) == 0 || isNullScalar(n.Content[0]))
}

func isNullScalar(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// syntaxError restates a YAML parse error without quoting the file.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return fmt.Errorf("not valid YAML: %s", scrub(msg))
}

// quoted finds quoted spans in yaml.v3's messages; longer than 3 characters
// they may be the file's text rather than a YAML indicator ('-', ':').
var quoted = regexp.MustCompile("'[^']{4,}'|`[^`]{4,}`|\"[^\"]{4,}\"")

// scrub drops the file's text that yaml.v3 quotes in some messages (an
// anchor's name, a repeated key, the first characters of a value).
func scrub(msg string) string {
	return strings.ReplaceAll(quoted.ReplaceAllString(msg, "(not shown)"), "\n", "; ")
}

// schema is what the file may hold at one level: its sections and its
// settings (with their Go types), as walk lays them out.
type schema struct {
	sections map[string]*schema
	settings map[string]reflect.Type
}

func newSchema(c *Config) *schema {
	root := &schema{}
	walk(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		parts := strings.Split(key, ".")
		s := root
		for _, p := range parts[:len(parts)-1] {
			if s.sections == nil {
				s.sections = map[string]*schema{}
			}
			if s.sections[p] == nil {
				s.sections[p] = &schema{}
			}
			s = s.sections[p]
		}
		if s.settings == nil {
			s.settings = map[string]reflect.Type{}
		}
		s.settings[parts[len(parts)-1]] = v.Type()
	})
	return root
}

func (s *schema) names() []string {
	var out []string
	for n := range s.sections {
		out = append(out, n)
	}
	for n := range s.settings {
		out = append(out, n)
	}
	return out
}

// checkDocument checks the document against c's keys and types, and
// returns every problem found, joined.
func checkDocument(doc *yaml.Node, c *Config) error {
	if len(doc.Content) == 0 {
		return nil
	}
	var errs []error
	root := doc.Content[0]
	if root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	switch {
	case isNullScalar(root):
	case root.Kind != yaml.MappingNode:
		errs = append(errs, fmt.Errorf("line %d: want a mapping of sections (run:, dataset:, train:, ...), got %s", root.Line, describe(root)))
	default:
		checkMapping(root, newSchema(c), "", &errs)
	}
	return errors.Join(errs...)
}

// keyName matches what may be shown of an unknown key: it looks like one
// of ours. Anything else may be text the file was not meant to hold.
var keyName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func checkMapping(m *yaml.Node, s *schema, prefix string, errs *[]error) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			*errs = append(*errs, fmt.Errorf("line %d, column %d: %s: want a key name, got %s", k.Line, k.Column, under(prefix), describe(k)))
			continue
		}
		name, key := k.Value, join(prefix, k.Value)
		sub, isSection := s.sections[name]
		t, isSetting := s.settings[name]
		if !isSection && !isSetting {
			*errs = append(*errs, unknownKey(k, s, prefix))
			continue
		}
		if line, dup := seen[name]; dup {
			*errs = append(*errs, fmt.Errorf("line %d: %s is set twice (first at line %d)", k.Line, key, line))
			continue
		}
		seen[name] = k.Line
		switch {
		case isNullScalar(v):
			// "key:" with no value keeps the default.
		case isSection && v.Kind != yaml.MappingNode:
			*errs = append(*errs, fmt.Errorf("line %d: %s: want a mapping of the section's keys, got %s", v.Line, key, describe(v)))
		case isSection:
			checkMapping(v, sub, key, errs)
		default:
			checkValue(v, t, key, errs)
		}
	}
}

func unknownKey(k *yaml.Node, s *schema, prefix string) error {
	if !keyName.MatchString(k.Value) {
		return fmt.Errorf("line %d, column %d: unknown key %s (its name is not shown: it is not a key name; see `supflow config keys`)", k.Line, k.Column, under(prefix))
	}
	msg := fmt.Sprintf("line %d: unknown key %s", k.Line, join(prefix, k.Value))
	if best := closest(k.Value, s.names()); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", join(prefix, best))
	} else {
		msg += " (see `supflow config keys`)"
	}
	return errors.New(msg)
}

func under(prefix string) string {
	if prefix == "" {
		return "at the top level"
	}
	return "in section " + prefix
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// checkValue checks that v can be decoded into a setting of type t: lists
// element by element, so that the message names the element.
func checkValue(v *yaml.Node, t reflect.Type, key string, errs *[]error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && v.Kind == yaml.SequenceNode {
		if t.Kind() == reflect.Array && len(v.Content) != t.Len() {
			*errs = append(*errs, fmt.Errorf("line %d: %s: want %s, got a list of %d", v.Line, key, want(t), len(v.Content)))
			return
		}
		for i, e := range v.Content {
			checkValue(e, t.Elem(), fmt.Sprintf("%s[%d]", key, i), errs)
		}
		return
	}
	if isInt(t) && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!float" {
		*errs = append(*errs, fmt.Errorf("line %d, column %d: %s: want %s, got a decimal number (it is not rounded)", v.Line, v.Column, key, want(t)))
		return
	}
	if v.Decode(reflect.New(t).Interface()) != nil {
		*errs = append(*errs, fmt.Errorf("line %d, column %d: %s: want %s, got %s", v.Line, v.Column, key, want(t), describe(v)))
	}
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return t != durationType
	}
	return false
}

// want says what a setting of type t takes.
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration (e.g. 30s, 2m)"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return want(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + plural(t.Elem())
	case reflect.Array:
		return fmt.Sprintf("a list of %d %s", t.Len(), plural(t.Elem()))
	}
	if isInt(t) {
		return "an integer"
	}
	return t.Kind().String()
}

func plural(t reflect.Type) string {
	switch {
	case isInt(t):
		return "integers"
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		return "numbers"
	}
	return "values (" + want(t) + ")"
}

// describe says what kind of value n is, without its text.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a decimal number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	case "!!merge":
		return "a merge key (<<)"
	}
	return "a value with a custom tag"
}
