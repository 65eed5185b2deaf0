package dataset

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseFast(t *testing.T) {
	good := `{"key":"train/cat/1.png","label":0,"class":"cat","split":"train","size":10,"sha256":"` + sha + `"}`
	tests := []struct {
		name string
		line string
		ok   bool // parseFast takes it (else encoding/json does)
	}{
		{"written by WriteManifest", good, true},
		{"no sha", strings.Replace(good, `,"sha256":"`+sha+`"`, ``, 1), true},
		{"shard member", strings.Replace(good, sha+`"}`, sha+`","shard":"s/0.tar","offset":512}`, 1), true},
		{"sha256 after shard", strings.Replace(good, `"size":10`, `"size":10,"shard":"s/0.tar","offset":512`, 1), false},
		{"largest label", strings.Replace(good, `"label":0`, `"label":2147483647`, 1), true},
		{"negative label", strings.Replace(good, `"label":0`, `"label":-2147483648`, 1), true},
		{"largest size", strings.Replace(good, `"size":10`, `"size":9223372036854775807`, 1), true},
		{"smallest size", strings.Replace(good, `"size":10`, `"size":-9223372036854775808`, 1), true},
		{"minus zero", strings.Replace(good, `"label":0`, `"label":-0`, 1), true},
		{"label over int32", strings.Replace(good, `"label":0`, `"label":2147483648`, 1), false},
		{"size over int64", strings.Replace(good, `"size":10`, `"size":9223372036854775808`, 1), false},
		{"leading zero", strings.Replace(good, `"size":10`, `"size":010`, 1), false},
		{"fraction", strings.Replace(good, `"size":10`, `"size":10.0`, 1), false},
		{"exponent", strings.Replace(good, `"size":10`, `"size":1e1`, 1), false},
		{"escape", strings.Replace(good, `cat/1`, `cat\/1`, 1), false},
		{"non-ASCII", strings.Replace(good, `cat/1`, `zèbre/1`, 1), false},
		{"space", strings.Replace(good, `"label":0`, `"label": 0`, 1), false},
		{"other order", `{"label":0,"key":"train/cat/1.png","class":"cat","split":"train","size":10}`, false},
		{"missing field", strings.Replace(good, `"label":0,`, ``, 1), false},
		{"unknown field", strings.Replace(good, `"size"`, `"sighs":1,"size"`, 1), false},
		{"trailing data", good + ` {}`, false},
		{"cut", good[:len(good)-1], false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFast([]byte(tt.line), false)
			if ok != tt.ok {
				t.Fatalf("parseFast ok = %v, want %v", ok, tt.ok)
			}
			if ok {
				want, err := parseJSON([]byte(tt.line))
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("parseFast = %+v; encoding/json gives %+v, %v", got, want, err)
				}
			}
		})
	}
}

// FuzzParseFast checks that every line parseFast takes is one
// encoding/json decodes to the same entry.
func FuzzParseFast(f *testing.F) {
	f.Add([]byte(`{"key":"train/cat/1.png","label":0,"class":"cat","split":"train","size":10,"sha256":"` + sha + `"}`))
	f.Add([]byte(`{"key":"t/c/1.png","label":-1,"class":"c","split":"t","size":10,"shard":"s","offset":512}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // not one line
		}
		got, ok := parseFast(line, false)
		if !ok {
			return
		}
		if borrowed, _ := parseFast(line, true); borrowed != got {
			t.Fatalf("parseFast(%q) borrowing = %+v, not %+v", line, borrowed, got)
		}
		want, err := parseJSON(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("parseFast(%q) = %+v; encoding/json gives %+v, %v", line, got, want, err)
		}
	})
}
