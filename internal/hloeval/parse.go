// Package hloeval executes StableHLO programs, in the generic MLIR text
// form go-xla's stablehlo builder writes, on the CPU: a reference evaluator
// for exactly the ops package xla emits, for tests and tools. Values are
// held as float64 and rounded to their element type after every op (f32
// and bf16 round to nearest even), so float64 programs run in IEEE double
// and float32 programs get each elementwise op correctly rounded (sums
// and products of reductions, dots and convolutions accumulate in float64
// and round once).
package hloeval

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ErrProgram reports text the evaluator cannot parse or run.
var ErrProgram = errors.New("hloeval: bad program")

// Type is a tensor type: element type (f64, f32, bf16, i32, i64, ui8, i1)
// and dimensions.
type Type struct {
	DType string
	Dims  []int
}

func (t Type) size() int {
	n := 1
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

func (t Type) String() string {
	var b strings.Builder
	b.WriteString("tensor<")
	for _, d := range t.Dims {
		fmt.Fprintf(&b, "%dx", d)
	}
	b.WriteString(t.DType + ">")
	return b.String()
}

// stmt is one operation: results = op(operands) [regions] {attrs}.
type stmt struct {
	results  []string
	op       string
	operands []string
	regions  []*function
	attrs    map[string]string
	outTypes []Type
}

// function is main or a region: named arguments and a body ending in a
// return.
type function struct {
	args     []string
	argTypes []Type
	body     []stmt
}

type parser struct {
	s   string
	pos int
}

func (p *parser) errorf(format string, args ...any) error {
	end := min(len(p.s), p.pos+60)
	return fmt.Errorf("%w: at %d (%q): %s", ErrProgram, p.pos, p.s[p.pos:end], fmt.Sprintf(format, args...))
}

func (p *parser) skip() {
	for p.pos < len(p.s) && unicode.IsSpace(rune(p.s[p.pos])) {
		p.pos++
	}
}

func (p *parser) peek(tok string) bool {
	p.skip()
	return strings.HasPrefix(p.s[p.pos:], tok)
}

func (p *parser) accept(tok string) bool {
	if p.peek(tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *parser) expect(tok string) error {
	if !p.accept(tok) {
		return p.errorf("want %q", tok)
	}
	return nil
}

// ident reads a run of identifier characters (after a sigil such as % or @).
func (p *parser) ident() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || c == '.' || c == '-' || c == '$' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

// balanced reads text up to (not including) a top-level stop byte, skipping
// nested <>, [], (), {} (the arrow "->" is not a bracket).
func (p *parser) balanced(stops string) string {
	start, depth := p.pos, 0
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '-' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '>':
			p.pos += 2
			continue
		case depth == 0 && strings.IndexByte(stops, c) >= 0:
			return strings.TrimSpace(p.s[start:p.pos])
		case strings.IndexByte("<[({", c) >= 0:
			depth++
		case strings.IndexByte(">])}", c) >= 0:
			depth--
		}
		p.pos++
	}
	return strings.TrimSpace(p.s[start:p.pos])
}

// typ reads tensor<...>.
func (p *parser) typ() (Type, error) {
	if err := p.expect("tensor<"); err != nil {
		return Type{}, err
	}
	end := strings.IndexByte(p.s[p.pos:], '>')
	if end < 0 {
		return Type{}, p.errorf("unterminated type")
	}
	parts := strings.Split(p.s[p.pos:p.pos+end], "x")
	p.pos += end + 1
	t := Type{DType: parts[len(parts)-1], Dims: []int{}}
	for _, d := range parts[:len(parts)-1] {
		n, err := strconv.Atoi(d)
		if err != nil {
			return Type{}, p.errorf("dimension %q", d)
		}
		t.Dims = append(t.Dims, n)
	}
	switch t.DType {
	case "f64", "f32", "bf16", "i32", "i64", "ui8", "i1":
	default:
		return Type{}, p.errorf("element type %q", t.DType)
	}
	return t, nil
}

// args reads (%a: type, ...).
func (p *parser) args() (names []string, types []Type, err error) {
	if err := p.expect("("); err != nil {
		return nil, nil, err
	}
	for !p.accept(")") {
		if len(names) > 0 {
			if err := p.expect(","); err != nil {
				return nil, nil, err
			}
		}
		if err := p.expect("%"); err != nil {
			return nil, nil, err
		}
		names = append(names, p.ident())
		if err := p.expect(":"); err != nil {
			return nil, nil, err
		}
		t, err := p.typ()
		if err != nil {
			return nil, nil, err
		}
		types = append(types, t)
		if p.peek("{") { // argument attributes
			p.pos++
			p.balanced("}")
			p.pos++
		}
	}
	return names, types, nil
}

// types reads one type or a parenthesised list (possibly empty).
func (p *parser) types() ([]Type, error) {
	if !p.accept("(") {
		t, err := p.typ()
		return []Type{t}, err
	}
	var out []Type
	for !p.accept(")") {
		if len(out) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		t, err := p.typ()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Parse reads a module holding one function, main.
func Parse(text string) (*Program, error) {
	p := &parser{s: text}
	if err := p.expect("module"); err != nil {
		return nil, err
	}
	if name := p.balanced("{"); strings.HasSuffix(name, "attributes") {
		p.pos++ // the attributes' brace
		p.balanced("}")
		p.pos++
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if err := p.expect("func.func"); err != nil {
		return nil, err
	}
	if err := p.expect("@"); err != nil {
		return nil, err
	}
	if name := p.ident(); name != "main" {
		return nil, p.errorf("function %q, want main", name)
	}
	var f function
	var err error
	if f.args, f.argTypes, err = p.args(); err != nil {
		return nil, err
	}
	if err := p.expect("->"); err != nil {
		return nil, err
	}
	if _, err := p.types(); err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	if f.body, err = p.body(); err != nil {
		return nil, err
	}
	if err := p.expect("}"); err != nil {
		return nil, err
	}
	return &Program{main: &f}, nil
}

// body reads statements up to the closing brace (not consumed).
func (p *parser) body() ([]stmt, error) {
	var out []stmt
	for !p.peek("}") {
		if p.pos >= len(p.s) {
			return nil, p.errorf("unterminated body")
		}
		s, err := p.stmt()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *parser) stmt() (stmt, error) {
	var s stmt
	for p.accept("%") {
		s.results = append(s.results, p.ident())
		if p.accept("=") {
			break
		}
		if err := p.expect(","); err != nil {
			return s, err
		}
	}
	if err := p.expect(`"`); err != nil {
		return s, err
	}
	end := strings.IndexByte(p.s[p.pos:], '"')
	if end < 0 {
		return s, p.errorf("unterminated op name")
	}
	s.op = strings.TrimPrefix(p.s[p.pos:p.pos+end], "stablehlo.")
	p.pos += end + 1
	if err := p.expect("("); err != nil {
		return s, err
	}
	for !p.accept(")") {
		if len(s.operands) > 0 {
			if err := p.expect(","); err != nil {
				return s, err
			}
		}
		if err := p.expect("%"); err != nil {
			return s, err
		}
		s.operands = append(s.operands, p.ident())
	}
	if p.accept("(") { // regions
		for !p.accept(")") {
			p.accept(",")
			if err := p.expect("{"); err != nil {
				return s, err
			}
			if err := p.expect("^"); err != nil {
				return s, err
			}
			p.ident()
			var r function
			var err error
			if r.args, r.argTypes, err = p.args(); err != nil {
				return s, err
			}
			if err := p.expect(":"); err != nil {
				return s, err
			}
			if r.body, err = p.body(); err != nil {
				return s, err
			}
			if err := p.expect("}"); err != nil {
				return s, err
			}
			s.regions = append(s.regions, &r)
		}
	}
	s.attrs = map[string]string{}
	if p.accept("{") {
		for !p.accept("}") {
			p.accept(",")
			key := p.ident()
			if err := p.expect("="); err != nil {
				return s, err
			}
			p.skip()
			s.attrs[key] = p.balanced(",}")
		}
	}
	if err := p.expect(":"); err != nil {
		return s, err
	}
	if _, err := p.types(); err != nil {
		return s, err
	}
	if err := p.expect("->"); err != nil {
		return s, err
	}
	out, err := p.types()
	if err != nil {
		return s, err
	}
	s.outTypes = out
	if len(s.outTypes) != len(s.results) && s.op != "return" {
		return s, p.errorf("%s: %d results, %d types", s.op, len(s.results), len(s.outTypes))
	}
	return s, nil
}
