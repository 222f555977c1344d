// Command minikit builds, measures and checks a matrix of minimal container
// images with BuildKit. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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

const usage = `minikit builds the minimal-image matrix with BuildKit: every build/run
combination is an LLB graph written in Go, solved in parallel.

Usage:
  minikit list [--json] [--extras] [NAME|GLOB...]  the recipe catalog (51 seed rows; --extras: beyond the seed)
  minikit solve --all | NAME|GLOB...       build recipes, report each result
  minikit test --all | NAME|GLOB...        build, run each image inside BuildKit, explain the outcome
  minikit report [-o FILE] RESULTS.json    the HTML report of a saved 'solve --format json'
  minikit diff [--format json] A B         files and config that differ between two recipes' images
  minikit dockerfile NAME                  the Dockerfile equivalent of a recipe
  minikit bake [--dir DIR]                 regenerate docker-bake.hcl for 'docker buildx bake'
  minikit bench [--runs N] [--only cold|warm]  minikit vs buildx bake, cold and warm, on a fresh buildkitd
  minikit daemon status|start|stop         the private buildkitd minikit runs
  minikit standins build|serve|list        offline stand-in base images

Run 'minikit COMMAND --help' for a command's flags.

Exit codes: 0 as expected; 1 a recipe failed (or succeeded) unexpectedly;
2 bad command line; 3 environment error (daemon, registry, files);
130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM): the builds are
stopped, their containers released and minikit's temporary files removed
before minikit exits. A second signal (Ctrl-C again) quits at once, leaving
that to buildkitd and the next run.
`

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
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	commands := map[string]func(context.Context, []string) error{
		"list":       a.list,
		"solve":      a.solve,
		"test":       a.test,
		"daemon":     a.daemon,
		"standins":   a.standins,
		"report":     a.report,
		"dockerfile": a.dockerfile,
		"bake":       a.bake,
		"diff":       a.diff,
		"bench":      a.bench,
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help", "help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(a.stderr, "minikit: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	err := cmd(ctx, rest)
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

// flags returns a flag set that reports its errors as usage errors and
// prints its help on stdout.
func (a app) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("minikit "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: minikit %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, turning errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	// Flags may come before, between or after the names, as people type
	// them (`minikit solve hello-c.gcc --progress plain`); "--" ends the
	// flags. The flag package stops at the first name: parse again after
	// each one.
	var names []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
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
		return usageError{err}
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
