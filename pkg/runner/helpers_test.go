package runner

import (
	"context"
	"path"
	"slices"
	"testing"

	"github.com/moby/buildkit/client/llb"
)

// The targets of these tests are written in raw LLB, with a few helpers
// that name their steps as a Dockerfile would ("[scratch] COPY a /"):
// package runner knows nothing of pkg/llbdefs.

// testSourceName is the local source the test targets copy from.
const testSourceName = "src"

// A tstage is a test target's stage: a base image ("" for scratch) and
// steps.
type tstage struct {
	from  string
	steps []func(st llb.State, in BuildInput) llb.State
}

func from(ref string) tstage { return tstage{from: ref} }
func scratch() tstage        { return tstage{} }

func (s tstage) label() string {
	if s.from == "" {
		return "scratch"
	}
	return s.from
}

func (s tstage) with(f func(llb.State, BuildInput) llb.State) tstage {
	s.steps = append(append([]func(llb.State, BuildInput) llb.State(nil), s.steps...), f)
	return s
}

var copyInfo = &llb.CopyInfo{FollowSymlinks: true, CopyDirContentsOnly: true, CreateDestPath: true, AllowWildcard: true, AllowEmptyWildcard: true}

// copy copies src from the test source to dst.
func (s tstage) copy(src, dst string) tstage {
	name := "[" + s.label() + "] COPY " + src + " " + dst
	return s.with(func(st llb.State, _ BuildInput) llb.State {
		local := llb.Local(testSourceName, llb.SharedKeyHint(testSourceName), llb.LocalUniqueID("runner-test-"+testSourceName))
		return st.File(llb.Copy(local, src, dst, copyInfo), llb.WithCustomName(name))
	})
}

// copyFrom copies src from another stage to dst.
func (s tstage) copyFrom(o tstage, src, dst string) tstage {
	name := "[" + s.label() + "] COPY --from=" + o.label() + " " + src + " " + dst
	return s.with(func(st llb.State, in BuildInput) llb.State {
		return st.File(llb.Copy(o.state(in), path.Join("/", src), dst, copyInfo), llb.WithCustomName(name))
	})
}

// run runs a shell command line.
func (s tstage) run(cmd string) tstage {
	name := "[" + s.label() + "] RUN " + cmd
	return s.with(func(st llb.State, _ BuildInput) llb.State {
		return st.Run(llb.Args([]string{"/bin/sh", "-c", cmd}), llb.WithCustomName(name)).Root()
	})
}

// workdir makes dir and works in it.
func (s tstage) workdir(dir string) tstage {
	name := "[" + s.label() + "] WORKDIR " + dir
	return s.with(func(st llb.State, _ BuildInput) llb.State {
		st = st.Dir(dir)
		return st.File(llb.Mkdir(path.Join("/", dir), 0o755, llb.WithParents(true)), llb.WithCustomName(name))
	})
}

// state compiles the stage.
func (s tstage) state(in BuildInput) llb.State {
	st := llb.Scratch().Platform(in.Platform)
	if s.from != "" {
		opts := []llb.ImageOption{llb.Platform(in.Platform)}
		if in.Resolver != nil {
			opts = append(opts, llb.WithMetaResolver(in.Resolver))
		}
		st = llb.Image(s.from, opts...)
	}
	for _, f := range s.steps {
		st = f(st, in)
	}
	return st
}

// images lists the stage's base image and those of the stages it copies
// from: the test stages record no dependencies, so the caller names
// them.
func images(refs ...string) []string {
	var out []string
	for _, r := range refs {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// target is a test target building final, with config cfg, reading src;
// more are the images of the stages final copies from.
func target(name string, src Source, final tstage, cfg ImageConfig, more ...string) Target {
	return Target{
		Name:    name,
		Base:    final.from,
		Images:  images(append([]string{final.from}, more...)...),
		Sources: []Source{src},
		Config:  cfg,
		LLB: func(_ context.Context, in BuildInput) (llb.State, error) {
			return final.state(in), nil
		},
	}
}

// testSource is a directory holding hello.c, as the test source.
func testSource(t *testing.T) Source {
	t.Helper()
	src, err := DirSource(testSourceName, samplesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// argv is an exec-form command, shell a shell-form one.
func argv(args ...string) []string { return args }
func shell(line string) []string   { return []string{"/bin/sh", "-c", line} }

// works is the check of an image that must exit 0.
func works() *Check { return &Check{} }

var _ llb.ImageMetaResolver = (*configCache)(nil)
