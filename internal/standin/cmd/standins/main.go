// Command standins builds and serves minikit's stand-in base images. It is
// a test harness for package standin; minikit's CLI wraps the same calls.
//
//	standins build [--only a,b] [--platform linux/amd64,linux/arm64] [--dir DIR] [--work DIR]
//	standins serve [--listen 127.0.0.1:5000] [--dir DIR] [--secret-file FILE]
//	standins list
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/standin"
)

const usage = `usage:
  standins build [--only NAME[,NAME...]] [--platform P[,P...]] [--dir DIR] [--work DIR]
  standins serve [--listen 127.0.0.1:5000] [--dir DIR] [--secret-file FILE]
  standins list
`

// usageError marks bad command lines: they also print the usage.
// Every error exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "standins: %s\n%s", ue.msg, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "standins: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command"}
	}
	home, herr := paths.Default()
	switch args[0] {
	case "build":
		fs := newFlagSet("build", stderr)
		only := fs.String("only", "", "comma-separated stand-ins to build (default: all)")
		dir := fs.String("dir", defaultDir(herr, home.StandIns), "OCI image layout directory")
		work := fs.String("work", "", "work and cache directory (default: DIR.work)")
		registry := fs.String("registry", "127.0.0.1:5000", "host:port of the registry that will serve the package index the python stand-ins' pip uses")
		platform := fs.String("platform", standin.DefaultPlatforms(), "comma-separated platforms: linux/amd64, linux/arm64")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		platforms, err := standin.ParsePlatforms(*platform)
		if err != nil {
			return usageError{err.Error()}
		}
		if *dir == "" {
			return usageError{"--dir is required (no state directory: " + errString(herr) + ")"}
		}
		opts := []standin.Option{standin.Progress(stdout), standin.IndexAddr(*registry), standin.Platforms(platforms...)}
		if *only != "" {
			var names []string
			for _, n := range strings.Split(*only, ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
			opts = append(opts, standin.Only(names...))
		}
		if *work != "" {
			opts = append(opts, standin.WorkDir(*work))
		}
		t0 := time.Now()
		built, err := standin.Build(ctx, *dir, opts...)
		for _, b := range built {
			state := "up to date"
			if b.Rebuilt {
				state = fmt.Sprintf("built in %.1fs", b.Elapsed.Seconds())
			}
			if b.Repaired != "" {
				state += " (repaired: " + b.Repaired + ")"
			}
			fmt.Fprintf(stdout, "%-32s %8.1f MB  %d layers  %s  %s\n", b.Label(), float64(b.Size)/1e6, b.Layers, b.Digest.String()[:19], state)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "total %.1fs\n", time.Since(t0).Seconds())
		return nil
	case "serve":
		fs := newFlagSet("serve", stderr)
		listen := fs.String("listen", "127.0.0.1:5000", "loopback address to listen on")
		dir := fs.String("dir", defaultDir(herr, home.StandIns), "OCI image layout directory")
		secretFile := fs.String("secret-file", "", "file holding the secret the registry proves it holds (created if missing)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return usageError{"--dir is required (no state directory: " + errString(herr) + ")"}
		}
		var secret []byte
		if *secretFile != "" {
			var err error
			if secret, err = standin.LoadSecret(*secretFile); err != nil {
				return err
			}
		}
		return standin.Serve(ctx, *dir, *listen, secret, stderr)
	case "list":
		if len(args) > 1 {
			return usageError{"list takes no arguments"}
		}
		for _, s := range standin.Catalog() {
			fmt.Fprintf(stdout, "%-32s %s\n", s.Name, s.From)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func defaultDir(err error, f func() string) string {
	if err != nil {
		return ""
	}
	return f()
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
