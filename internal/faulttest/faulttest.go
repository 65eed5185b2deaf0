// Package faulttest is supflow's fault-injection suite (issue #5): each
// TestIntegrationFault* test runs a small real pipeline through
// internal/clustertest (MinIO and NATS on 127.0.0.1, every stage a separate
// process), injects one kind of fault from outside (SIGKILL, SIGSTOP, a NATS
// restart, a MinIO outage, credentials that deny one object), and compares
// the exact set of samples the trainer consumed per epoch against the
// manifest. The suite prints a table of the outcomes and, with
// SUPFLOW_RELIABILITY_DOC=path, writes it as docs/reliability.md
// (`make reliability`). TestSoak (`make soak`) runs continuous epochs for
// SOAK_DURATION and checks that memory and stream sizes stay flat.
//
// This file holds the accounting and the table; the tests are in the
// _test.go files. The package is for tests only.
package faulttest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
)

// Account compares what the trainer reported for one epoch with what it
// should have reported: every sample id in [0, size) trained exactly once,
// except the ids in dead, which must be dropped (dead-lettered) instead.
type Account struct {
	Expected   int // samples in the epoch
	Received   int // trained + dropped ids reported, repeats included
	Lost       int // expected ids neither trained nor dropped as they should be
	Duplicated int // ids reported more than once (trained twice, or trained and dropped)
	Extra      int // ids outside the epoch
	Dropped    int // ids dropped, as expected
}

// Tally accounts for one epoch of size samples whose ids in dead should be
// dead-lettered, given the trainer's trained and dropped id lists.
func Tally(size int, dead []uint64, trained, dropped []uint64) Account {
	a := Account{Expected: size, Received: len(trained) + len(dropped)}
	count := map[uint64]int{}
	for _, id := range trained {
		count[id]++
	}
	gone := map[uint64]int{}
	for _, id := range dropped {
		gone[id]++
	}
	for id := range uint64(size) {
		n, d := count[id], gone[id]
		if n+d > 1 {
			a.Duplicated += n + d - 1
		}
		want := slices.Contains(dead, id)
		switch {
		case want && d > 0:
			a.Dropped++
		case !want && n > 0:
		default:
			a.Lost++
		}
	}
	for id, n := range count {
		if id >= uint64(size) {
			a.Extra += n
		}
	}
	for id, n := range gone {
		if id >= uint64(size) {
			a.Extra += n
		}
	}
	return a
}

// Add sums b into a.
func (a *Account) Add(b Account) {
	a.Expected += b.Expected
	a.Received += b.Received
	a.Lost += b.Lost
	a.Duplicated += b.Duplicated
	a.Extra += b.Extra
	a.Dropped += b.Dropped
}

// OK reports whether the epoch was exact.
func (a Account) OK() bool { return a.Lost == 0 && a.Duplicated == 0 && a.Extra == 0 }

// Row is one fault case of the table.
type Row struct {
	Case     string
	Injected string
	Reports  int // epoch trained lines checked, repeats after a restart included
	Account
	Pass   bool
	Detail string // what else was checked, or why it failed
}

// Report collects rows from concurrent tests.
type Report struct {
	mu   sync.Mutex
	rows []Row
}

// Add appends a row.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// Rows returns the rows sorted by case name.
func (r *Report) Rows() []Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := slices.Clone(r.rows)
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Case, b.Case) })
	return rows
}

// WriteTable writes the rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| case | injected fault | epoch reports | samples expected | received | lost | duplicated | dead-lettered | result | checked |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		result := "FAIL"
		if r.Pass {
			result = "pass"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", cell(r.Case), cell(r.Injected), r.Reports,
			r.Expected, r.Received, r.Lost, r.Duplicated, r.Dropped, result, cell(r.Detail))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a table cell on one line and its pipes literal.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// EnvDoc names the variable that makes the suite write its table as a
// Markdown document (make reliability), and internal/composetest its
// section of that document.
const EnvDoc = "SUPFLOW_RELIABILITY_DOC"

// sectionBegin starts every generated section of a document.
const sectionBegin = "<!-- begin "

func sectionMarkers(name string) (begin, end string) {
	return sectionBegin + name + " (generated) -->\n", "<!-- end " + name + " -->\n"
}

// WriteSection replaces section name of the Markdown document at path with
// body (between its markers; appended when the document has none), so that
// several suites generate one document: make reliability writes
// docs/reliability.md and keeps its sections, internal/composetest writes
// its own section of it.
func WriteSection(path, name string, body []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	begin, end := sectionMarkers(name)
	section := begin + string(body) + end
	doc := string(old)
	if i := strings.Index(doc, begin); i >= 0 {
		if j := strings.Index(doc[i:], end); j >= 0 {
			return os.WriteFile(path, []byte(doc[:i]+section+doc[i+j+len(end):]), 0o644)
		}
	}
	if doc != "" {
		doc += "\n"
	}
	return os.WriteFile(path, []byte(doc+section), 0o644)
}

// sections returns the generated sections at the end of the document at
// path, markers included; "" when it has none or does not exist.
func sections(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := strings.Index(string(b), sectionBegin); i >= 0 {
		return "\n" + string(b[i:])
	}
	return ""
}
