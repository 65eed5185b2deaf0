// Command data is `make bench-data`: supflow's data plane against PIL and
// torchvision on the same files, one core each, then the decode -> augment
// pipeline over embedded NATS JetStream and S3. See docs/benchmarks.md
// ("Data plane") for what it measures and bench/data/run.sh for the knobs.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/transform"
)

func main() {
	var o options
	flag.StringVar(&o.photos, "photos", "/usr/share/wallpapers/*/contents/images/*.jpg", "glob of the JPEG photographs")
	flag.IntVar(&o.nPhotos, "images", 0, "photographs to use, 0 for all")
	flag.IntVar(&o.augPhotos, "aug-photos", 40, "photographs held decoded at full size for augment_photo_full (about 14 MB each, on each side)")
	flag.IntVar(&o.nSmall, "small", 20000, "32x32 and 28x28 images to generate")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per case; each side keeps its best")
	flag.DurationVar(&o.minTime, "min-time", 2*time.Second, "least time per case and side; every case also covers all its files once")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "Python with PIL, torch and torchvision")
	flag.StringVar(&o.ref, "ref", "bench/data/pil_ref.py", "reference script")
	flag.BoolVar(&o.pipelineOnly, "pipeline-only", false, "skip the decode and augment comparisons with PIL and torchvision")
	flag.StringVar(&o.work, "work", "", "scratch folder for the generated images (default: a temporary one, removed)")
	flag.IntVar(&o.nJPEG, "jpegs", 500, "ImageNet-like JPEGs to cut for the jpeg224 case (jpeg.go), 0 to skip it")
	flag.BoolVar(&o.jpegOnly, "jpeg-only", false, "run only the jpeg224 case")
	s3 := flag.String("s3", "memory", "the embedded S3's storage: memory, or disk (files in a temporary folder, as `supflow run` keeps them)")
	cases := flag.String("case", "", "regular expression: run only the pipeline rows whose name (PIPELINE case=) matches")
	flag.StringVar(&sel.profile, "cpuprofile", "", "write a CPU profile of each pipeline row run to `prefix`.<n>.<row>.pprof")
	flag.Parse()
	switch *s3 {
	case "memory":
	case "disk":
		s3Disk = true
	default:
		fmt.Fprintln(os.Stderr, "bench-data: -s3: memory or disk, not", *s3)
		os.Exit(2)
	}
	if *cases != "" {
		re, err := regexp.Compile(*cases)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-data: -case:", err)
			os.Exit(2)
		}
		sel.cases = re
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-data:", err)
		os.Exit(1)
	}
}

type options struct {
	photos             string
	nPhotos, augPhotos int
	nSmall, rounds     int
	nJPEG              int
	jpegOnly           bool
	minTime            time.Duration
	python, ref, work  string
	pipelineOnly       bool
}

// inputs are the benchmark's files, as lists the reference script reads and
// as bytes in memory.
type inputs struct {
	lists   map[string]string // list name -> file listing its paths
	files   map[string][][]byte
	photoMP []float64
}

func run(o options) error {
	if o.work == "" {
		dir, err := os.MkdirTemp("", "bench-data-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	fmt.Printf("bench-data %s, %d CPUs, %s\n", time.Now().Format(time.RFC3339), runtime.NumCPU(), loadavg())
	in, err := prepare(o)
	if err != nil {
		return err
	}
	mp := in.photoMP
	sort.Float64s(mp)
	fmt.Printf("inputs: %d distinct photos (%.1f-%.1f MP, median %.1f), first %d held decoded for augment_photo_full; %d 32x32 RGB and 28x28 gray PNGs cut from them\n\n",
		len(mp), mp[0], mp[len(mp)-1], mp[len(mp)/2], len(in.files["photos_aug"]), len(in.files["small32"]))
	if !o.pipelineOnly && !o.jpegOnly {
		if err := micro(o, in); err != nil {
			return err
		}
	}
	if !o.jpegOnly {
		if err := pipelines([]pipelineCase{{"png32", in.files["small32"], 32, false}, {"gray28", in.files["small28"], 28, true}}); err != nil {
			return err
		}
	}
	if o.nJPEG == 0 {
		return nil
	}
	return jpegPipeline(in.files["photos"], o.nJPEG)
}

// prepare lists the photographs and cuts the small images from them: random
// square crops of the photos resized (antialiased) to 32x32 RGB and 28x28
// gray, so they hold photographic content as CIFAR and MNIST-sized data do.
func prepare(o options) (*inputs, error) {
	paths, err := filepath.Glob(o.photos)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	paths, err = distinct(paths)
	if err != nil {
		return nil, err
	}
	if o.nPhotos > 0 && o.nPhotos < len(paths) {
		paths = paths[:o.nPhotos]
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no photographs match %s (apt-get install plasma-workspace-wallpapers)", o.photos)
	}
	in := &inputs{lists: map[string]string{}, files: map[string][][]byte{}}
	var rgb, gray []transform.Pixels
	dRGB, _ := imgdecode.New(imgdecode.Config{ResizeShorter: 256})
	dGray, _ := imgdecode.New(imgdecode.Config{ResizeShorter: 256, Gray: true})
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		in.photoMP = append(in.photoMP, float64(cfg.Width*cfg.Height)/1e6)
		in.files["photos"] = append(in.files["photos"], data)
		for _, d := range []struct {
			dec *imgdecode.Decoder
			out *[]transform.Pixels
		}{{dRGB, &rgb}, {dGray, &gray}} {
			m, err := d.dec.Decode(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			*d.out = append(*d.out, transform.Pixels{H: m.Height, W: m.Width, C: m.Channels, Pix: m.Pix})
		}
	}
	in.lists["photos"] = filepath.Join(o.work, "photos.txt")
	if err := os.WriteFile(in.lists["photos"], []byte(strings.Join(paths, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	n := min(o.augPhotos, len(paths))
	in.lists["photos_aug"] = filepath.Join(o.work, "photos_aug.txt")
	in.files["photos_aug"] = in.files["photos"][:n]
	if err := os.WriteFile(in.lists["photos_aug"], []byte(strings.Join(paths[:n], "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		name string
		src  []transform.Pixels
		side int
	}{{"small32", rgb, 32}, {"small28", gray, 28}} {
		if err := cutSmall(in, o, s.name, s.src, s.side); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// distinct drops files whose content an earlier one has: most wallpaper
// files are symbolic links to another size's file.
func distinct(paths []string) ([]string, error) {
	seen := map[[sha256.Size]byte]bool{}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if h := sha256.Sum256(b); !seen[h] {
			seen[h] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func cutSmall(in *inputs, o options, name string, src []transform.Pixels, side int) error {
	dir := filepath.Join(o.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, uint64(side)))
	var (
		rs    transform.Resizer
		m     transform.Image
		paths []string
	)
	for i := range o.nSmall {
		p := src[i%len(src)]
		short := min(p.H, p.W)
		s := short/4 + rng.IntN(short-short/4+1)
		box := transform.Box{Top: rng.IntN(p.H - s + 1), Left: rng.IntN(p.W - s + 1), Height: s, Width: s}
		if err := rs.ResizedCrop(&m, p, box, side, side, true); err != nil {
			return err
		}
		pix, err := m.AppendBytes(nil)
		if err != nil {
			return err
		}
		var img image.Image
		if p.C == 1 {
			img = &image.Gray{Pix: pix, Stride: side, Rect: image.Rect(0, 0, side, side)}
		} else {
			rgba := image.NewRGBA(image.Rect(0, 0, side, side))
			for j := range side * side {
				copy(rgba.Pix[4*j:], pix[3*j:3*j+3])
				rgba.Pix[4*j+3] = 255
			}
			img = rgba // opaque, so encoded as 8-bit RGB
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		path := filepath.Join(dir, fmt.Sprintf("%05d.png", i))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return err
		}
		paths = append(paths, path)
		in.files[name] = append(in.files[name], buf.Bytes())
	}
	in.lists[name] = filepath.Join(o.work, name+".txt")
	return os.WriteFile(in.lists[name], []byte(strings.Join(paths, "\n")+"\n"), 0o644)
}

// loadavg is /proc/loadavg, printed next to numbers: the machine is shared.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "loadavg unknown"
	}
	return "loadavg " + strings.Join(strings.Fields(string(b))[:3], " ")
}
