package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/imagefs"
	"github.com/minikit/minikit/pkg/runner"
)

var update = flag.Bool("update", false, "rewrite README.md's flag table")

const (
	flagsBegin = "<!-- flags:begin: written by `go test ./cmd/minikit -run TestREADMEFlags -update` from the flag definitions; do not edit -->"
	flagsEnd   = "<!-- flags:end -->"
)

// docParallel is how the README states runner.DefaultParallel, which
// depends on the machine.
const docParallel = "2 x CPUs, at least 16"

// docEnv sets the environment the defaults are read in: none of the
// variables that move them, a home directory named as the README names
// it. It returns the replacements that turn what is left of this
// machine in the text (the home directory, the platform) into words.
func docEnv(t *testing.T) *strings.Replacer {
	t.Helper()
	home := t.TempDir()
	t.Setenv("MINIKIT_HOME", home)
	for _, v := range []string{
		"BUILDKIT_HOST", "MINIKIT_REGISTRY", standin.PlatformsEnv, "SOURCE_DATE_EPOCH",
		connect.EnvTLSCACert, connect.EnvTLSCert, connect.EnvTLSKey, connect.EnvTLSServerName,
	} {
		t.Setenv(v, "")
	}
	return strings.NewReplacer(
		home, "~/.cache/minikit",
		"default "+imagefs.DefaultPlatform(), "default: this machine's platform",
	)
}

// renderFlags is the README's flag reference: every command's flags, from
// the flag sets the commands make.
func renderFlags(t *testing.T) string {
	t.Helper()
	host := docEnv(t)
	var b strings.Builder
	b.WriteString(flagsBegin + "\n")
	b.WriteString(`## Flags

Every command's flags, made from their definitions (` + "`minikit help COMMAND`" + ` prints the
same, with this machine's defaults). A flag is written ` + "`--name`" + ` or ` + "`-name`" + `; its value
follows it (` + "`--parallel 8`" + `) or is joined with ` + "`=`" + ` (` + "`--sizes=false`" + `, the form a
boolean's false needs). ` + "`minikit completion bash|zsh|fish`" + ` completes them.
`)
	for _, cf := range (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags() {
		synopsis := ""
		if cf.path == cf.cmd.name {
			synopsis = cf.cmd.synopsis
		}
		fmt.Fprintf(&b, "\n### `minikit %s`\n\n", cf.path)
		if cf.path == cf.cmd.name {
			fmt.Fprintf(&b, "`minikit %s %s`: %s.\n\n", cf.path, strings.SplitN(synopsis, "\n", 2)[0], cf.cmd.summary)
		}
		rows := 0
		cf.fs.VisitAll(func(f *flag.Flag) {
			if rows == 0 {
				b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
			}
			rows++
			def := ""
			if _, ok := flagDefault(f); ok {
				def = f.DefValue
				if f.Name == "parallel" && def == strconv.Itoa(runner.DefaultParallel()) {
					def = docParallel
				} else {
					def = "`" + host.Replace(def) + "`"
				}
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", flagHead(f), cell(def), cell(host.Replace(flagUsage(f))))
		})
		if rows == 0 {
			b.WriteString("No flags.\n")
		}
	}
	b.WriteString(flagsEnd + "\n")
	return b.String()
}

// cell makes text fit in one Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}

// TestREADMEFlags fails when README.md's flag table is not what the
// commands' flag sets give; -update rewrites it.
func TestREADMEFlags(t *testing.T) {
	if want := max(16, 2*runtime.NumCPU()); runner.DefaultParallel() != want {
		t.Fatalf("runner.DefaultParallel() = %d, not max(16, 2 x CPUs) = %d: the README's %q is wrong", runner.DefaultParallel(), want, docParallel)
	}
	section := renderFlags(t)
	// What is left of this machine would make the README differ on the
	// next one.
	for _, local := range []string{os.TempDir() + "/", os.Getenv("HOME") + "/"} {
		if local != "/" && strings.Contains(section, local) {
			t.Errorf("the flag table holds %q, this machine's: a default that depends on it needs words in docEnv", local)
		}
	}
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := spliceFlags(string(readme), section)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if got != string(readme) {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	if got != string(readme) {
		t.Errorf("README.md's flag table (between %q and %q) is not the flags' definitions: run go test ./cmd/minikit -run TestREADMEFlags -update", "flags:begin", flagsEnd)
	}
}

// spliceFlags replaces the flag section of readme (from the line that
// starts with the begin marker to the end marker's line) with section.
func spliceFlags(readme, section string) (string, error) {
	begin := strings.Index(readme, "<!-- flags:begin")
	end := strings.Index(readme, flagsEnd)
	switch {
	case begin < 0 || end < 0:
		return "", fmt.Errorf("README.md has no flag section: want a line starting %q and one %q", "<!-- flags:begin", flagsEnd)
	case end < begin:
		return "", fmt.Errorf("README.md's %q comes before its begin marker", flagsEnd)
	}
	end += len(flagsEnd)
	if end < len(readme) && readme[end] == '\n' {
		end++
	}
	return readme[:begin] + section + readme[end:], nil
}

func TestSpliceFlags(t *testing.T) {
	got, err := spliceFlags("a\n<!-- flags:begin x -->\nold\n"+flagsEnd+"\nb\n", "new\n")
	if err != nil || got != "a\nnew\nb\n" {
		t.Errorf("splice: %q, %v", got, err)
	}
	if _, err := spliceFlags("no markers\n", "new\n"); err == nil {
		t.Error("a README without markers: no error")
	}
	if _, err := spliceFlags(flagsEnd+"\n<!-- flags:begin -->\n", "new\n"); err == nil {
		t.Error("markers in the wrong order: no error")
	}
}

// The table lists every flag of every command, as the command defines it.
func TestFlagTableListsEveryFlag(t *testing.T) {
	section := renderFlags(t)
	n := 0
	for _, cf := range (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags() {
		head := "\n### `minikit " + cf.path + "`\n"
		i := strings.Index(section, head)
		if i < 0 {
			t.Errorf("no section for %s", cf.path)
			continue
		}
		part := section[i+len(head):]
		if j := strings.Index(part, "\n### "); j >= 0 {
			part = part[:j]
		}
		cf.fs.VisitAll(func(f *flag.Flag) {
			n++
			if !strings.Contains(part, "| `"+flagHead(f)+"` |") {
				t.Errorf("minikit %s: %s not in its table", cf.path, flagName(f))
			}
		})
	}
	// solve alone has more than 20: a registry that lost the commands'
	// flag sets would list none.
	if n < 40 {
		t.Errorf("%d flags in all: the commands' flag sets were not found", n)
	}
}
