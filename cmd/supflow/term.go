package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// term is stderr with an optional progress line: when stderr is a
// terminal, log lines are written above a bar that is redrawn in place;
// otherwise the bar is not drawn and the log lines alone tell progress.
type term struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	line string
}

func newTerm(w io.Writer) *term {
	t := &term{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			t.tty = true
		}
	}
	return t
}

// Write writes log output, keeping the progress line below it.
func (t *term) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		fmt.Fprint(t.w, "\r\033[K")
	}
	n, err := t.w.Write(p)
	if t.line != "" {
		fmt.Fprint(t.w, t.line)
	}
	return n, err
}

// progress draws "label [=====>    ] done/total suffix"; total 0 clears it.
func (t *term) progress(label string, done, total int, suffix string) {
	if t == nil || !t.tty {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if total <= 0 {
		t.line = ""
		fmt.Fprint(t.w, "\r\033[K")
		return
	}
	const width = 30
	fill := min(width, done*width/total)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	t.line = fmt.Sprintf("%s [%s] %d/%d %s", label, bar, done, total, suffix)
	fmt.Fprint(t.w, "\r\033[K"+t.line)
}
