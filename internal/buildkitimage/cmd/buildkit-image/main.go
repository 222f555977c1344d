// Command buildkit-image makes the minikit/buildkitd:VERSION image (see
// package buildkitimage) and prints its reference:
//
//	go run ./internal/buildkitimage/cmd/buildkit-image [--force]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/minikit/minikit/internal/buildkitimage"
)

func main() {
	force := flag.Bool("force", false, "rebuild even when the image exists")
	runc := flag.String("runc", "", "runc binary to include (default: runc on PATH)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ref, err := buildkitimage.Ensure(ctx, buildkitimage.Options{Force: *force, Runc: *runc, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildkit-image:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
}
