// Command minikit builds, measures and checks a matrix of minimal container
// images with BuildKit. See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/samples"
)

// Exit codes, for scripts.
const (
	exitOK         = 0 // everything as expected
	exitUnexpected = 1 // a recipe built or ran differently from what was expected
	exitUsage      = 2 // bad command line: unknown command, flag or recipe name
	exitEnv        = 3 // the environment failed: daemon unreachable, I/O error
	// A signal N that stops the run gives 128+N (signalError.exitCode).
)

// usageHead and usageTail frame the list of commands in the top-level
// usage (usage()).
const usageHead = `minikit builds the minimal-image matrix with BuildKit: every build/run
combination is an LLB graph written in Go, solved in parallel.

Usage:
`

const usageTail = `
Run 'minikit help COMMAND' (or 'minikit COMMAND --help') for a command's flags;
'minikit --version' for the versions of minikit, BuildKit and Go.

Exit codes: 0 as expected; 1 a recipe failed (or succeeded) unexpectedly;
2 bad command line; 3 environment error (daemon, registry, files);
130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM): the builds are
stopped, their containers released and minikit's temporary files removed
before minikit exits. A second signal (Ctrl-C again) quits at once, leaving
that to buildkitd and the next run.
`

// argKind is what a command's arguments are, for shell completion.
type argKind int

const (
	argNone           argKind = iota // no arguments, or nothing to complete
	argRecipes                       // recipe names and globs
	argRecipesOrFiles                // recipe names, or files (inspect)
	argFiles                         // files
	argDirs                          // a directory
	argCommands                      // a command's name (help)
)

// command is one of minikit's subcommands: the registry that dispatch,
// the usage text, `minikit help`, shell completion and the README's flag
// table are made from.
type command struct {
	name     string
	synopsis string // the arguments, as the usage text shows them
	summary  string // what the command does, one line
	run      func(app, context.Context, []string) error
	// verbs are the words the first argument may be (daemon
	// status|start|stop, completion bash|zsh|fish); a verb may have its
	// own flags (standins build).
	verbs []string
	// args are the arguments after the verb, if any.
	args   argKind
	hidden bool // left out of the usage text and completion
}

// commands is minikit's command registry, in the order the usage text
// lists them.
func commands() []command {
	return []command{
		{name: "list", synopsis: "[--extras] [NAME|GLOB...]", summary: "the recipe catalog (51 seed rows; --extras: beyond the seed)", run: app.list, args: argRecipes},
		{name: "solve", synopsis: "--all | NAME|GLOB...", summary: "build recipes, report each result", run: app.solve, args: argRecipes},
		{name: "test", synopsis: "--all | NAME|GLOB...", summary: "build, run each image inside BuildKit, explain the outcome", run: app.test, args: argRecipes},
		{name: "report", synopsis: "[--report FILE] RESULTS.json", summary: "the HTML report of a saved 'solve --format json'", run: app.report, args: argFiles},
		{name: "diff", synopsis: "[--format table|json] A B", summary: "files and config that differ between two recipes' images", run: app.diff, args: argRecipes},
		{name: "inspect", synopsis: "TARBALL|DIR|NAME|REF...", summary: "measure any image: an archive, a layout, a recipe's, a registry's", run: app.inspect, args: argRecipesOrFiles},
		{name: "compare", synopsis: "OLD.json NEW.json", summary: "size and outcome changes between two saved reports; --max-growth 5%", run: app.compare, args: argFiles},
		{name: "explore", synopsis: "[flags] DIR", summary: "find the smallest image that runs the program in DIR (Go, C, Rust, Python, Java)", run: app.explore, args: argDirs},
		{name: "dockerfile", synopsis: "NAME", summary: "the Dockerfile equivalent of a recipe", run: app.dockerfile, args: argRecipes},
		{name: "bake", synopsis: "[--dir DIR]", summary: "regenerate docker-bake.hcl for 'docker buildx bake'", run: app.bake},
		{name: "bench", synopsis: "[--runs N] [--only cold|warm]", summary: "minikit vs buildx bake, cold and warm, on a fresh buildkitd", run: app.bench, args: argRecipes},
		{name: "daemon", synopsis: "status|start|stop", summary: "the private buildkitd minikit runs", run: app.daemon, verbs: []string{"status", "start", "stop"}},
		{name: "standins", synopsis: "build|serve|list", summary: "offline stand-in base images", run: app.standins, verbs: []string{"build", "serve", "list"}},
		{name: "help", synopsis: "[COMMAND]", summary: "minikit's usage, or a command's flags", run: app.help, args: argCommands},
		{name: "version", synopsis: "[--format table|json]", summary: "the versions of minikit, the pinned BuildKit and Go (also --version)", run: app.version},
		{name: "completion", synopsis: "bash|zsh|fish", summary: "a script completing commands, flags and recipe names in bash, zsh or fish", run: app.completion, verbs: shellNames()},
		{name: completeCommand, summary: "words for the completion scripts", run: app.complete, hidden: true},
	}
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the top-level help: every command with its synopsis.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		line := "  minikit " + c.name
		if c.synopsis != "" {
			line += " " + c.synopsis
		}
		const column = 43
		if len(line) < column-1 {
			line += strings.Repeat(" ", column-len(line))
		} else {
			line += "  "
		}
		b.WriteString(line + c.summary + "\n")
	}
	b.WriteString(usageTail)
	return b.String()
}

// usageError marks errors caused by the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// unexpectedError marks a run whose recipes did not do what was expected
// (exit 1); the details were already printed.
type unexpectedError struct{ n int }

func (e unexpectedError) Error() string {
	return fmt.Sprintf("%d recipe(s) did not end as expected", e.n)
}

// app carries what every command writes to.
type app struct {
	stdout, stderr io.Writer
	// flagSet, if set, is called with every flag set a command makes
	// (app.flags): `minikit help`, completion and the README's flag table
	// learn a command's flags by running it with --help.
	flagSet func(*flag.FlagSet)
}

func main() {
	a := app{stdout: os.Stdout, stderr: os.Stderr}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stop := a.onSignals(context.Background(), sigs, os.Exit)
	code := a.run(ctx, os.Args[1:])
	signal.Stop(sigs)
	stop()
	os.Exit(code)
}

// signalError is the cause of the run's context when a signal stops it.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "stopped by " + signalName(e.sig) }

// exitCode is what a shell reports for a process the signal ended.
func (e signalError) exitCode() int { return 128 + int(e.sig) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// onSignals returns a context that the first signal from sigs cancels,
// with a signalError as its cause: the command stops its builds and cleans
// up. A second signal calls exit at once with its exit code. stop ends the
// watch.
func (a app) onSignals(parent context.Context, sigs <-chan os.Signal, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		stopping := false
		for {
			var sig os.Signal
			select {
			case <-done:
				return
			case sig = <-sigs:
			}
			s, ok := sig.(syscall.Signal)
			if !ok {
				continue
			}
			if !stopping {
				stopping = true
				fmt.Fprintf(a.stderr, "minikit: %s: stopping the builds and cleaning up; a second signal quits at once\n", signalName(s))
				cancel(signalError{s})
				continue
			}
			fmt.Fprintf(a.stderr, "minikit: second signal (%s): quitting without cleaning up\n", signalName(s))
			exit(signalError{s}.exitCode())
			return
		}
	})
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

func (a app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage())
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		fmt.Fprint(a.stdout, usage())
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(a.stderr, "minikit: unknown command %q%s\nRun 'minikit help' for the commands.\n", name, didYouMean(name))
		return exitUsage
	}
	err := cmd.run(a, ctx, rest)
	var sig signalError
	if errors.As(context.Cause(ctx), &sig) {
		// A signal ended the run, whatever the command returned: exit as
		// a shell reports a process the signal ended.
		switch {
		case err == nil, errors.Is(err, context.Canceled), errors.As(err, new(signalError)):
			fmt.Fprintf(a.stderr, "minikit %s: %v\n", name, sig)
		default:
			fmt.Fprintf(a.stderr, "minikit %s: %v (%v)\n", name, err, sig)
		}
		return sig.exitCode()
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	fmt.Fprintf(a.stderr, "minikit %s: %v\n", name, err)
	var ue usageError
	var unexp unexpectedError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &unexp):
		return exitUnexpected
	}
	return exitEnv
}

// flags returns a flag set that reports its errors as usage errors (exit
// 2, on stderr) and prints its help, asked for with -h or --help, on
// stdout (parse returns flag.ErrHelp: exit 0). name is the command's
// name ("solve", "standins build"), synopsis its arguments.
func (a app) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("minikit "+name, flag.ContinueOnError)
	fs.SetOutput(flagOutput{stdout: a.stdout, stderr: a.stderr})
	fs.Usage = func() { writeHelp(fs.Output(), fs, name, synopsis) }
	if a.flagSet != nil {
		a.flagSet(fs)
	}
	return fs
}

// flagOutput is the output of app.flags' flag sets: stderr for what a
// command prints itself with fs.Usage() (a usage error), and the stdout
// where parse sends help that was asked for.
type flagOutput struct{ stdout, stderr io.Writer }

func (o flagOutput) Write(p []byte) (int, error) { return o.stderr.Write(p) }

// parse parses flags, turning errors into usage errors. Help asked for
// (-h, --help) is written on stdout, for a flag set of app.flags, and
// returned as flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	// What the flag package prints itself (the help, an error with the
	// whole usage) is held back: help goes to stdout, and an error is the
	// one line the command's caller prints, with a pointer to the help.
	out := fs.Output()
	var held bytes.Buffer
	fs.SetOutput(&held)
	defer fs.SetOutput(out)
	fail := func(err error) error {
		if errors.Is(err, flag.ErrHelp) {
			help := out
			if o, ok := out.(flagOutput); ok {
				help = o.stdout
			}
			// The help's writer failing (a closed pipe) leaves nothing
			// to report it to.
			_, _ = help.Write(held.Bytes())
			return err
		}
		return usageError{fmt.Errorf("%w (see '%s --help')", err, fs.Name())}
	}
	// Flags may come before, between or after the names, as people type
	// them (`minikit solve hello-c.gcc --progress plain`); "--" ends the
	// flags. The flag package stops at the first name: parse again after
	// each one.
	var names []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return fail(err)
		}
		left := fs.Args()
		if used := len(rest) - len(left); used > 0 && rest[used-1] == "--" {
			names = append(names, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		names = append(names, left[0])
		rest = left[1:]
	}
	// Leave the names as fs.Args().
	if err := fs.Parse(append([]string{"--"}, names...)); err != nil {
		return fail(err)
	}
	return nil
}

// homeAndSamples returns minikit's state directory and the samples
// directory: the one given, else the samples built into minikit, written
// under the state directory.
func homeAndSamples(given string) (paths.Home, string, error) {
	home, err := paths.Default()
	if err != nil {
		return "", "", err
	}
	if given != "" {
		return home, given, nil
	}
	dir, err := samples.WriteTo(home.Samples())
	return home, dir, err
}
