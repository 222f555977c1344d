package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// Every command that talks to a builder has the same builder flags, with
// the same usage and defaults (--progress auto, as buildx), and no flag
// of any command shows the flag package's placeholder "value".
func TestBuilderFlagsConsistent(t *testing.T) {
	builder := []string{"addr", "tlscacert", "tlscert", "tlskey", "tlsservername", "progress"}
	want := map[string]*flag.Flag{}
	seen := map[string]bool{}
	for _, cf := range (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags() {
		cf.fs.VisitAll(func(f *flag.Flag) {
			if name, _ := flag.UnquoteUsage(f); name == "value" {
				t.Errorf("minikit %s --%s: placeholder %q in its help", cf.path, f.Name, name)
			}
		})
		if cf.fs.Lookup("addr") == nil {
			continue
		}
		seen[cf.path] = true
		for _, name := range builder {
			f := cf.fs.Lookup(name)
			if f == nil {
				t.Errorf("minikit %s has --addr but no --%s", cf.path, name)
				continue
			}
			if name == "progress" && f.DefValue != "auto" {
				t.Errorf("minikit %s --progress defaults to %q, want auto", cf.path, f.DefValue)
			}
			usage := strings.TrimSuffix(f.Usage, "; one only") // single-builder commands say so
			if i := strings.Index(usage, "; repeatable"); i >= 0 {
				usage = usage[:i]
			}
			if w := want[name]; w == nil {
				want[name] = &flag.Flag{Usage: usage, DefValue: f.DefValue}
			} else if w.Usage != usage || w.DefValue != f.DefValue {
				t.Errorf("minikit %s --%s: %q (default %q), another command has %q (default %q)", cf.path, name, usage, f.DefValue, w.Usage, w.DefValue)
			}
		}
	}
	for _, cmd := range []string{"solve", "test", "explore", "inspect", "diff"} {
		if !seen[cmd] {
			t.Errorf("minikit %s talks to a builder but has no --addr", cmd)
		}
	}
}

// A command that uses one builder refuses several addresses (exit 2,
// before connecting); every command refuses an unknown --progress.
func TestBuilderFlagsChecked(t *testing.T) {
	t.Setenv("MINIKIT_HOME", t.TempDir())
	for _, args := range [][]string{
		{"diff", "--addr", "unix:///a.sock", "--addr", "unix:///b.sock", "hello-c.gcc", "hello-c.gcc.scratch"},
		{"inspect", "--addr", "unix:///a.sock,unix:///b.sock", "hello-c.gcc"},
	} {
		code, _, stderr := run(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "uses one builder, not 2") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
	for _, cmd := range []string{"solve", "test", "inspect", "diff"} {
		code, _, stderr := run(t, cmd, "--progress", "fancy", "hello-c.gcc", "hello-c.gcc.scratch")
		if code != exitUsage || !strings.Contains(stderr, "--progress must be one of auto, tty, plain, quiet, rawjson") {
			t.Errorf("%s --progress fancy: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}
