// Command supflow runs the supflow pipeline: every stage in one process with
// embedded NATS and S3 (`supflow run`), or one stage per process
// (`supflow decode`, `supflow augment`, ...) against shared servers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/internal/blasimpl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: 2 for a bad command line or configuration (nothing started),
// 1 for a failure while running.
const (
	exitRuntime = 1
	exitUsage   = 2
)

// command is one subcommand: its flags are registered on fs before parsing.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet, o *options)
	run     func(ctx context.Context, env *env) error
}

// options are the flags every subcommand shares plus the per-command ones.
type options struct {
	configPath string
	sets       multiFlag
	logFormat  string
	logLevel   string

	// per-command flags (registered by the commands that use them)
	resume     bool
	startEpoch int
	wait       bool
	checkpoint string
	report     string
	outDir     string
}

// env is what a command runs with.
type env struct {
	cfg    *config.Config
	opts   *options
	log    *slog.Logger
	stdout io.Writer
	term   *term // stderr, with a progress line on terminals
	args   []string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// usageError marks a bad command line or configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	name := args[0]
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "supflow: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	fs := flag.NewFlagSet("supflow "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.configPath, "config", "pipeline.yaml", "pipeline configuration file (\"\" = defaults only)")
	fs.Var(&o.sets, "set", "override one key, e.g. --set train.epochs=3 (repeatable)")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json (overrides log.format)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "supflow %s: %s\n\nFlags:\n", name, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if o.logFormat != "" {
		o.sets = append(o.sets, "log.format="+o.logFormat)
	}
	if o.logLevel != "" {
		o.sets = append(o.sets, "log.level="+o.logLevel)
	}
	e := &env{opts: o, stdout: stdout, args: fs.Args(), term: newTerm(stderr)}
	if name != "version" {
		cfg, err := config.Load(o.configPath, os.LookupEnv, o.sets)
		if err != nil {
			fmt.Fprintf(stderr, "supflow %s: %v\n", name, err)
			return exitUsage
		}
		e.cfg = cfg
		e.log = newLogger(e.term, cfg.Log)
		setBLASThreads(cfg.Train.Threads)
		tuneRuntime()
	}
	err := cmd.run(ctx, e)
	e.term.progress("", 0, 0, "")
	if err != nil {
		fmt.Fprintf(stderr, "supflow %s: %v\n", name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitRuntime
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "supflow %s: supervised contrastive learning as a dataflow pipeline\n\nUsage: supflow <command> [flags]\n\nCommands:\n", version)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun `supflow <command> --help` for a command's flags.\n")
}

// setBLASThreads applies train.threads. The default is one OpenBLAS thread
// unless OPENBLAS_NUM_THREADS says otherwise: supflow's own ops run on the
// Go side between GEMMs, and idle OpenBLAS threads spinning meanwhile made
// a demo step 1.5x slower on 2 cores (docs/benchmarks.md).
func setBLASThreads(n int) {
	switch {
	case n > 0:
		blasimpl.SetThreads(n)
	case os.Getenv("OPENBLAS_NUM_THREADS") == "":
		blasimpl.SetThreads(1)
	}
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
