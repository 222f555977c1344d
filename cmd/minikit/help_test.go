package main

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

// noDaemon points minikit at a home and a daemon address that lead
// nowhere: a command that did not stop at --help would fail, not build.
func noDaemon(t *testing.T) {
	t.Helper()
	t.Setenv("MINIKIT_HOME", t.TempDir())
	t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/minikit.sock")
}

// Every command (and verb with its own flags) prints its help on stdout
// and exits 0, for -h, --help, and help after a name.
func TestEveryCommandHelpOnStdout(t *testing.T) {
	noDaemon(t)
	all := (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags()
	var paths []string
	for _, cf := range all {
		paths = append(paths, cf.path)
	}
	for _, want := range []string{"list", "solve", "test", "daemon", "standins", "standins build", "standins serve", "help", "version", "completion"} {
		if !slices.Contains(paths, want) {
			t.Errorf("allFlags lacks %q: %q", want, paths)
		}
	}
	for _, cf := range all {
		words := strings.Fields(cf.path)
		for _, h := range []string{"--help", "-h", "-help"} {
			start := time.Now()
			code, out, errOut := run(t, append(words, h)...)
			if code != exitOK || errOut != "" {
				t.Errorf("%s %s: exit %d, stderr %q; want 0 and nothing", cf.path, h, code, errOut)
			}
			if !strings.HasPrefix(out, "Usage: minikit "+cf.path) {
				t.Errorf("%s %s: stdout does not start with its usage:\n%s", cf.path, h, out)
			}
			cf.fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(out, "\n  "+flagHead(f)+"\n") {
					t.Errorf("%s %s: %s missing from the help:\n%s", cf.path, h, flagHead(f), out)
				}
			})
			if d := time.Since(start); d > time.Minute {
				t.Errorf("%s %s took %v: it did more than print its help", cf.path, h, d)
			}
		}
	}
	// After a name, as the flags may come.
	code, out, _ := run(t, "solve", "hello-c.gcc", "--help")
	if code != exitOK || !strings.Contains(out, "--parallel int") {
		t.Errorf("solve NAME --help: exit %d:\n%s", code, out)
	}
}

func TestHelpCommand(t *testing.T) {
	noDaemon(t)
	code, out, _ := run(t, "help")
	if code != exitOK || out != usage() {
		t.Errorf("help: exit %d, stdout is not the usage:\n%s", code, out)
	}
	for _, words := range [][]string{{"solve"}, {"list"}, {"standins", "build"}, {"daemon"}, {"completion"}, {"help"}} {
		code, out, errOut := run(t, append([]string{"help"}, words...)...)
		_, want, _ := run(t, append(words, "--help")...)
		if code != exitOK || errOut != "" || out != want || want == "" {
			t.Errorf("help %s: exit %d, stderr %q, stdout differs from --help's:\n%s", strings.Join(words, " "), code, errOut, out)
		}
	}
	// help solve is solve's help, not the top-level text.
	if _, out, _ := run(t, "help", "solve"); strings.Contains(out, "Exit codes") || !strings.Contains(out, "Usage: minikit solve") {
		t.Errorf("help solve:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"help", "slove"}, "did you mean solve?"},
		{[]string{"help", "--nosuchflag"}, "not defined"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", tc.args, code, out, errOut, tc.want)
		}
	}
}

// A bad flag is a usage error on stderr (exit 2) that points at the help,
// without the help itself on stdout.
func TestFlagErrorOnStderr(t *testing.T) {
	noDaemon(t)
	code, out, errOut := run(t, "solve", "--nosuchflag")
	if code != exitUsage || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errOut, "flag provided but not defined: -nosuchflag") || !strings.Contains(errOut, "'minikit solve --help'") {
		t.Errorf("stderr %q", errOut)
	}
	if strings.Count(errOut, "not defined") != 1 {
		t.Errorf("the error is printed more than once:\n%s", errOut)
	}
	// A command's own usage error (daemon without a verb) still prints
	// the usage on stderr.
	code, out, errOut = run(t, "daemon")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "Usage: minikit daemon") {
		t.Errorf("daemon: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestUsageListsEveryCommand(t *testing.T) {
	u := usage()
	for _, c := range commands() {
		line := "\n  minikit " + c.name + " "
		if got := strings.Contains(u, line); got == c.hidden {
			t.Errorf("%s (hidden %v) listed: %v", c.name, c.hidden, got)
		}
		if c.run == nil || (!c.hidden && c.summary == "") {
			t.Errorf("%s: no run function or no summary", c.name)
		}
	}
	for _, word := range []string{"Exit codes", "130 interrupted", "minikit help COMMAND"} {
		if !strings.Contains(u, word) {
			t.Errorf("usage lacks %q", word)
		}
	}
	seen := map[string]bool{}
	for _, c := range commands() {
		if seen[c.name] {
			t.Errorf("%s registered twice", c.name)
		}
		seen[c.name] = true
	}
	code, _, errOut := run(t, "slove")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "slove"; did you mean solve?`) {
		t.Errorf("slove: exit %d, %q", code, errOut)
	}
}

func TestDidYouMean(t *testing.T) {
	for in, want := range map[string]string{
		"slove": "solve",
		"lst":   "list",
		"compl": "completion",
		"stand": "standins",
		"xyzzy": "",
		"":      "",
	} {
		got := didYouMean(in)
		switch {
		case want == "" && got != "":
			t.Errorf("%q: %q, want no suggestion", in, got)
		case want != "" && got != "; did you mean "+want+"?":
			t.Errorf("%q: %q, want %s", in, got, want)
		}
	}
}

func TestWriteHelp(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("n", 0, "how many")
	fs.Int("parallel", 16, "at once")
	fs.String("format", "table", "output: table or json")
	fs.String("report", "", "write to `FILE`")
	fs.Bool("all", false, "every one")
	fs.Bool("sizes", true, "measure them, in a usage long enough to be wrapped onto a second line of the help text as it is printed")
	var b bytes.Buffer
	writeHelp(&b, fs, "solve", "[flags] NAME")
	got := b.String()
	for _, want := range []string{
		"Usage: minikit solve [flags] NAME\n",
		"\nBuild recipes, report each result.\n",
		"\n  --all\n      every one\n",
		`--format string` + "\n      output: table or json (default \"table\")\n",
		"\n  -n int\n      how many\n",
		"\n  --parallel int\n      at once (default 16)\n",
		"\n  --report FILE\n      write to FILE\n",
		"\n  --sizes\n      measure them,",
		"(default true)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("help lacks %q:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if len(line) > 80 {
			t.Errorf("line longer than 80: %q", line)
		}
	}
}

// One spelling of the output format: --format, table (or, for report,
// html) by default, with table and json among its values; no --json but
// list's alias.
func TestOneFormatSpelling(t *testing.T) {
	noDaemon(t)
	formats := 0
	for _, cf := range (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags() {
		cf.fs.VisitAll(func(f *flag.Flag) {
			switch f.Name {
			case "format":
				formats++
				want := "table"
				if cf.path == "report" {
					// report's job is the HTML page.
					want = "html"
				}
				if f.DefValue != want || !strings.Contains(f.Usage, "table") {
					t.Errorf("%s --format: default %q, usage %q; want default %s and table among the values", cf.path, f.DefValue, f.Usage, want)
				}
				if cf.path != "report" && !strings.Contains(f.Usage, "json") {
					t.Errorf("%s --format %q: no json", cf.path, f.Usage)
				}
			case "json", "text", "output-format", "fmt", "o-format":
				if cf.path != "list" || f.Name != "json" {
					t.Errorf("%s --%s: the format is --format", cf.path, f.Name)
				}
			}
		})
	}
	if formats < 8 {
		t.Errorf("%d commands with --format", formats)
	}
	// diff's former default, text, still works (it reaches the daemon,
	// unreachable here); a wrong one is a usage error.
	code, _, errOut := run(t, "diff", "--format", "text", "hello-c.gcc", "hello-c.gcc-static.scratch")
	if code != exitEnv || !strings.Contains(errOut, "unreachable") {
		t.Errorf("diff --format text: exit %d, %q; want the daemon tried", code, errOut)
	}
	code, _, errOut = run(t, "diff", "--format", "xml", "hello-c.gcc", "hello-c.gcc-static.scratch")
	if code != exitUsage || !strings.Contains(errOut, "table or json") {
		t.Errorf("diff --format xml: exit %d, %q", code, errOut)
	}
}
