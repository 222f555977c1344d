// Command hello builds a program minikit has never seen, through package
// runner alone: a small C program written into a temporary directory,
// compiled statically in a gcc image and copied onto scratch, exported to
// buildkitd's image store, measured, and run inside BuildKit with a check
// of its output.
//
//	go run ./examples/hello -addr unix:///run/buildkit/buildkitd.sock
//
// The address defaults to $BUILDKIT_HOST. It prints one line about the
// image and exits 0 when the image built and its run passed, 1 when not,
// 2 on bad usage; -json prints the runner's Result instead.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"

	"github.com/minikit/minikit/pkg/runner"
)

// program is the C program built: it counts down, and says so.
const program = `#include <stdio.h>

int main(void) {
	for (int i = 3; i > 0; i--)
		printf("%d... ", i);
	printf("liftoff\n");
	return 0;
}
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", os.Getenv("BUILDKIT_HOST"), "buildkitd address (default $BUILDKIT_HOST)")
	gcc := fs.String("gcc", "docker.io/library/gcc:12-bookworm", "the image the program is compiled in")
	asJSON := fs.Bool("json", false, "print the runner's Result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: hello -addr BUILDKIT_ADDRESS [-gcc IMAGE] [-json]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := build(ctx, *addr, *gcc)
	if err != nil {
		fmt.Fprintln(stderr, "hello:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "hello:", err)
			return 1
		}
	} else {
		size := "?"
		if res.Image != nil {
			size = fmt.Sprintf("%d bytes", res.Image.Uncompressed)
		}
		run := "not run"
		if res.Run != nil {
			run = fmt.Sprintf("run: %s (%s)", res.Run.Reason, map[bool]string{true: "passed", false: "FAILED"}[res.Run.Matches])
		}
		fmt.Fprintf(stdout, "%s: %s, %s, image %s, %s\n", res.Name, res.Status, size, res.ImageName, run)
		if res.Error != "" {
			fmt.Fprintf(stdout, "  %s\n", res.Error)
		}
	}
	if res.Unexpected() {
		return 1
	}
	return 0
}

// build writes the program to a temporary directory and solves its
// target on the buildkitd at addr.
func build(ctx context.Context, addr, gcc string) (runner.Result, error) {
	dir, err := os.MkdirTemp("", "runner-example-*")
	if err != nil {
		return runner.Result{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "liftoff.c"), []byte(program), 0o644); err != nil {
		return runner.Result{}, err
	}
	src, err := runner.DirSource("liftoff-src", dir)
	if err != nil {
		return runner.Result{}, err
	}

	target := runner.Target{
		Name:    "liftoff.static.scratch",
		Program: "liftoff",
		Images:  []string{gcc},
		Sources: []runner.Source{src},
		LLB: func(_ context.Context, in runner.BuildInput) (llb.State, error) {
			local := llb.Local(src.Name, llb.SharedKeyHint(src.Name), llb.LocalUniqueID("runner-example-"+src.Name))
			compiler := llb.Image(gcc, llb.Platform(in.Platform), llb.WithMetaResolver(in.Resolver))
			built := compiler.
				File(llb.Copy(local, "liftoff.c", "/src/liftoff.c", &llb.CopyInfo{CreateDestPath: true})).
				Run(llb.Shlex("gcc -static -O2 -s -o /out/liftoff /src/liftoff.c"), llb.AddMount("/out", llb.Scratch())).
				GetMount("/out")
			// Dated with the source date epoch, when the run has one.
			return llb.Scratch().Platform(in.Platform).File(llb.Copy(built, "/liftoff", "/liftoff", &llb.CopyInfo{CreatedTime: in.Epoch})), nil
		},
		Config: runner.ImageConfig{
			Entrypoint: []string{"/liftoff"},
			Labels:     map[string]string{"org.opencontainers.image.title": "liftoff"},
		},
		Check: &runner.Check{ExpectExit: 0, ExpectOutput: regexp.MustCompile(`3\.\.\. 2\.\.\. 1\.\.\. liftoff`)},
	}

	c, err := client.New(ctx, addr)
	if err != nil {
		return runner.Result{}, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	results, err := runner.Solve(ctx, c, []runner.Target{target},
		runner.NameTemplate("docker.io/library/runner-example:{name}"),
		runner.Measure(),
		runner.Test(runner.TestOptions{}))
	if err != nil {
		return runner.Result{}, err
	}
	if len(results) != 1 {
		return runner.Result{}, errors.New("no result")
	}
	return results[0], nil
}
