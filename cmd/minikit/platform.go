package main

import (
	"flag"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/runner"
)

// platformFlag adds --platform to fs: what the recipes are built and run
// for, as `docker buildx build --platform` takes it.
func platformFlag(fs *flag.FlagSet) *string {
	return fs.String("platform", "", "platform to build (and run) the recipes for, os/arch[/variant] as buildx takes it: linux/amd64, linux/arm64 "+
		"(another machine's runs emulated: scripts/binfmt registers qemu for arm64); default the builder's own")
}

// platformOption is the runner option of --platform's value: nil (the
// builder's own platform) when it is empty. A list of several platforms
// is a usage error: one run builds each recipe for one platform.
func platformOption(v string) (runner.Option, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if strings.Contains(v, ",") {
		return nil, usagef("--platform %q: one platform per run (several at once, one image index per recipe, are not supported yet)", v)
	}
	p, err := v1.ParsePlatform(v)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, usagef("--platform %q: want os/arch[/variant], such as linux/arm64", v)
	}
	return runner.Platform(ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}), nil
}
