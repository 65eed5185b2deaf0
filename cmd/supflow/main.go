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
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/internal/blasimpl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: 2 for a bad command line or configuration (nothing
// started), 1 for a failure while running, 128 + the signal's number (130
// for SIGINT, 143 for SIGTERM) when a signal stopped the command, at start
// or while running (docs/operations.md).
const (
	exitRuntime = 1
	exitUsage   = 2
)

// command is one subcommand: its flags are registered on fs before parsing.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet, o *options)
	// args are the positional arguments the command takes, at most one
	// of them (config's "keys"); any other is refused.
	args []string
	// check refuses, before anything starts, what the configuration and
	// flags allow in general but this command cannot do (exit code 2).
	check func(e *env) error
	run   func(ctx context.Context, env *env) error
	// tensors marks the commands whose heap is mostly a model's
	// long-lived tensors: they collect at engine.GCPercent (tuneRuntime).
	// The others, the data plane's workers among them, keep Go's default:
	// their heap is short-lived messages over a small live set.
	tensors bool
}

// options are the flags every subcommand shares plus the per-command ones.
type options struct {
	configPath string
	sets       multiFlag
	logFormat  string
	logLevel   string

	// per-command flags (registered by the commands that use them)
	resume     bool
	force      bool
	startEpoch int
	wait       bool
	checkpoint string
	report     string
	outDir     string
	outFile    string
	split      string
	limit      int
	head       bool
}

// env is what a command runs with.
type env struct {
	cfg    *config.Config
	opts   *options
	log    *slog.Logger
	stdout io.Writer
	term   *term // stderr, with a progress line on terminals
	args   []string
	// getenv is os.Getenv with the credential variables resolved from
	// their _FILE forms (secretEnv), read at start.
	getenv func(string) string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// keyFlag is a boolean flag that overrides one pipeline.yaml key: setting
// it is --set key=value at the same place on the command line, so the key
// stays the one fact and the flag its shorthand (`decode --augment` is
// `--set decode.augment=true`; `--augment=false` turns a file's true off).
type keyFlag struct {
	key  string
	sets *multiFlag
}

func (f keyFlag) String() string   { return "" }
func (f keyFlag) IsBoolFlag() bool { return true }
func (f keyFlag) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	return f.sets.Set(f.key + "=" + strconv.FormatBool(b))
}

// usageError marks a bad command line or configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	// First: from here on SIGINT and SIGTERM end the command (exit code
	// 128 + the signal), also while the configuration is being read.
	ctx, stop := notifyContext(context.Background(), os.Stderr)
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
	o := &options{}
	fs := newFlagSet(name, cmd, o)
	positional, err := parseArgs(fs, args[1:])
	if err != nil {
		fs.SetOutput(stderr)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintln(stderr, errorText(err.Error()))
		fs.Usage()
		return exitUsage
	}
	if err := checkArgs(name, cmd, positional); err != nil {
		fmt.Fprintf(stderr, "supflow %s: %s\n", name, errorText(err.Error()))
		return exitUsage
	}
	if o.logFormat != "" {
		o.sets = append(o.sets, "log.format="+o.logFormat)
	}
	if o.logLevel != "" {
		o.sets = append(o.sets, "log.level="+o.logLevel)
	}
	e := &env{opts: o, stdout: stdout, args: positional, term: newTerm(stderr), getenv: os.Getenv}
	if name != "version" {
		// Reading files may block (a FIFO is refused unread, but a
		// network file system may hang): a signal ends the wait.
		err := interruptible(ctx, func() error { return e.prepare(name, cmd) })
		if st, ok := stopCause(ctx); ok {
			fmt.Fprintf(stderr, "supflow %s: %v before starting\n", name, st)
			return st.exitCode()
		}
		if err != nil {
			fmt.Fprintf(stderr, "supflow %s: %s\n", name, errorText(err.Error()))
			return exitUsage
		}
		setBLASThreads(e.cfg.Train.Threads)
		tuneRuntime(cmd.tensors)
	}
	err = cmd.run(ctx, e)
	e.term.progress("", 0, 0, "")
	if st, ok := stopCause(ctx); ok {
		// Stopped by a signal, whatever the command returned: it did not
		// finish what it was asked to do.
		msg := st.Error()
		if err != nil && !errors.Is(err, context.Canceled) {
			msg += " (while stopping: " + err.Error() + ")"
		}
		fmt.Fprintf(stderr, "supflow %s: %s\n", name, errorText(msg))
		return st.exitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "supflow %s: %s\n", name, errorText(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitRuntime
	}
	return 0
}

// newFlagSet registers the flags every command shares and cmd's own, all
// parsed into o. It prints nothing: the flag package prints its errors
// quoting the flag as given, so run prints them, escaped, once parsing is
// over.
func newFlagSet(name string, cmd command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("supflow "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.configPath, "config", "pipeline.yaml", "pipeline configuration file (\"\" = defaults only)")
	fs.Var(&o.sets, "set", "override one key, e.g. --set train.epochs=3 (repeatable)")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json (overrides log.format)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "supflow %s: %s\n\nFlags:\n", name, cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// prepare reads everything the command needs before it starts anything:
// the environment (unknown SUPFLOW_* variables are refused), the
// configuration, the secret files, and the files the configuration names;
// then the command's own checks. Every error is a usage error (exit 2).
func (e *env) prepare(name string, cmd command) error {
	if err := config.CheckEnv(os.Environ(), otherEnv); err != nil {
		return err
	}
	cfg, err := config.Load(e.opts.configPath, os.LookupEnv, e.opts.sets)
	if err != nil {
		return err
	}
	e.cfg = cfg
	e.log = newLogger(e.term, cfg.Log)
	if name != "config" {
		if e.getenv, err = secretEnv(os.Getenv); err != nil {
			return err
		}
		if err := checkFiles(cfg); err != nil {
			return err
		}
	}
	if cmd.check != nil {
		return cmd.check(e)
	}
	return nil
}

// parseArgs parses args with fs, flags before and after positional
// arguments alike (flag stops at the first positional: `supflow train foo
// --resume` dropped --resume), and returns the positional arguments. After
// "--" everything is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// checkArgs refuses positional arguments the command does not take.
func checkArgs(name string, cmd command, positional []string) error {
	if len(positional) == 0 || len(positional) == 1 && slices.Contains(cmd.args, positional[0]) {
		return nil
	}
	quoted := make([]string, len(positional))
	for i, a := range positional {
		quoted[i] = strconv.Quote(a)
	}
	takes := "takes no arguments, only flags"
	if len(cmd.args) > 0 {
		takes = "takes at most one argument, " + strings.Join(cmd.args, " or ")
	}
	return fmt.Errorf("unexpected argument %s: supflow %s %s (see supflow %s --help)", strings.Join(quoted, " "), name, takes, name)
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
