package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/transform"
)

// benchCase is one operation measured on both sides over the same files.
type benchCase struct {
	name, list, unit string
	target           float64 // least go/ref ratio wanted; 0 for none
	// setup turns the files into items and returns the op on item i; it runs
	// before the clock starts (decoding augment inputs, for instance).
	setup func(files [][]byte) (items int, op func(i int) error, err error)
}

// result is one side's measurement: n ops in sec; mallocs counted on the Go
// side only.
type result struct {
	N       int     `json:"n"`
	Sec     float64 `json:"sec"`
	Mallocs uint64  `json:"-"`
	Bytes   uint64  `json:"-"`
}

func (r result) rate() float64 { return float64(r.N) / r.Sec }

func decodeCase(cfg imgdecode.Config) func([][]byte) (int, func(int) error, error) {
	return func(files [][]byte) (int, func(int) error, error) {
		d, err := imgdecode.New(cfg)
		if err != nil {
			return 0, nil, err
		}
		return len(files), func(i int) error {
			_, err := d.Decode(files[i%len(files)])
			return err
		}, nil
	}
}

// augmentCase decodes the files with dec, then makes a pair of views of one
// image per op through the augment stage, as the pipeline does.
func augmentCase(dec imgdecode.Config, size int) func([][]byte) (int, func(int) error, error) {
	return func(files [][]byte) (int, func(int) error, error) {
		d, err := imgdecode.New(dec)
		if err != nil {
			return 0, nil, err
		}
		st, err := augment.New(augment.Config{Seed: 1, Config: transform.Config{Size: size}})
		if err != nil {
			return 0, nil, err
		}
		imgs := make([]messages.Image, len(files))
		for i, f := range files {
			m, err := d.Decode(f)
			if err != nil {
				return 0, nil, err
			}
			imgs[i] = messages.Image{RunID: benchRun, Height: uint32(m.Height), Width: uint32(m.Width), Channels: uint8(m.Channels), Pixels: m.Pix}
		}
		ctx := context.Background()
		return len(imgs), func(i int) error {
			m := imgs[i%len(imgs)]
			m.SampleID = uint64(i) // a fresh draw of crop, flip and jitter each time
			_, err := st.Handle(ctx, m)
			return err
		}, nil
	}
}

func cases() []benchCase {
	return []benchCase{
		{"decode_full", "photos", "img/s", 1, decodeCase(imgdecode.Config{})},
		{"decode_256", "photos", "img/s", 2, decodeCase(imgdecode.Config{ResizeShorter: 256})},
		// The same Go op against PIL without draft mode: torchvision's
		// default loader (full decode) followed by Resize(256).
		{"decode_256_nodraft", "photos", "img/s", 0, decodeCase(imgdecode.Config{ResizeShorter: 256})},
		{"augment_photo_full", "photos_aug", "pairs/s", 2, augmentCase(imgdecode.Config{}, 224)},
		{"augment_photo_256", "photos", "pairs/s", 2, augmentCase(imgdecode.Config{ResizeShorter: 256}, 224)},
		{"decode_png32", "small32", "img/s", 1, decodeCase(imgdecode.Config{})},
		{"decode_png28_gray", "small28", "img/s", 1, decodeCase(imgdecode.Config{Gray: true})},
		{"augment_32", "small32", "pairs/s", 2, augmentCase(imgdecode.Config{}, 32)},
		{"augment_28_gray", "small28", "pairs/s", 2, augmentCase(imgdecode.Config{Gray: true}, 28)},
	}
}

// micro runs every case on one core: the Go side with GOMAXPROCS=1, then the
// reference right after it, so both see about the same machine load, o.rounds
// times; each side keeps its best round, the one least disturbed by others.
func micro(o options, in *inputs) error {
	ref, err := startRef(o)
	if err != nil {
		return err
	}
	defer ref.close()
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	fmt.Printf("Per core (GOMAXPROCS=1; torch.set_num_threads(1)); each side covers all files of a case once and runs >= %v; best of %d rounds\n", o.minTime, o.rounds)
	fmt.Printf("%-20s %-8s %10s %10s %7s %-12s %9s %7s  %s\n", "case", "unit", "go", "pil/tv", "ratio", "target", "allocs/op", "KB/op", "load")
	var lines []string
	for _, c := range cases() {
		var g, r result
		for range o.rounds {
			gi, err := measure(c, in.files[c.list], o.minTime)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			ri, err := ref.run(c.name, in.lists[c.list], o.minTime)
			if err != nil {
				return fmt.Errorf("%s: reference: %w", c.name, err)
			}
			if g.N == 0 || gi.rate() > g.rate() {
				g = gi
			}
			if r.N == 0 || ri.rate() > r.rate() {
				r = ri
			}
		}
		ratio := g.rate() / r.rate()
		target := "-"
		if c.target > 0 {
			target = fmt.Sprintf("%.1fx met", c.target)
			if ratio < c.target {
				target = fmt.Sprintf("%.1fx MISSED", c.target)
			}
		}
		perOp := float64(g.N)
		fmt.Printf("%-20s %-8s %10.1f %10.1f %6.2fx %-12s %9.1f %7.1f  %s\n", c.name, c.unit, g.rate(), r.rate(), ratio,
			target, float64(g.Mallocs)/perOp, float64(g.Bytes)/perOp/1024, loadavg())
		lines = append(lines, fmt.Sprintf("BENCH case=%s go=%.1f ref=%.1f unit=%s ratio=%.2f", c.name, g.rate(), r.rate(), c.unit, ratio))
	}
	fmt.Println("(augment allocs/op and KB/op are per pair: divide by 2 for per view)")
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Println()
	return nil
}

// measure runs c until it covered every item once and minTime passed,
// counting allocations over the timed loop.
func measure(c benchCase, files [][]byte, minTime time.Duration) (result, error) {
	items, op, err := c.setup(files)
	if err != nil {
		return result{}, err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, start := 0, time.Now()
	for n < items || time.Since(start) < minTime {
		if err := op(n); err != nil {
			return result{}, err
		}
		n++
	}
	sec := time.Since(start).Seconds()
	runtime.ReadMemStats(&after)
	return result{N: n, Sec: sec, Mallocs: after.Mallocs - before.Mallocs, Bytes: after.TotalAlloc - before.TotalAlloc}, nil
}

// refProc is pil_ref.py, answering one JSON request per line.
type refProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startRef(o options) (*refProc, error) {
	cmd := exec.Command(o.python, o.ref)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", o.python, o.ref, err)
	}
	p := &refProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	// Wait out the torch import, so that it does not share the core with
	// the first Go case.
	if !p.out.Scan() {
		p.close()
		return nil, fmt.Errorf("%s %s did not start (%v)", o.python, o.ref, p.out.Err())
	}
	return p, nil
}

func (p *refProc) run(name, list string, minTime time.Duration) (result, error) {
	req, err := json.Marshal(map[string]any{"case": name, "list": list, "min_sec": minTime.Seconds()})
	if err != nil {
		return result{}, err
	}
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		return result{}, err
	}
	if !p.out.Scan() {
		return result{}, fmt.Errorf("no answer (%v)", p.out.Err())
	}
	var r result
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return result{}, err
	}
	if r.N == 0 || r.Sec <= 0 {
		return result{}, fmt.Errorf("empty answer %s", p.out.Bytes())
	}
	return r, nil
}

func (p *refProc) close() {
	p.in.Close() // the script ends at EOF
	_ = p.cmd.Wait()
}
