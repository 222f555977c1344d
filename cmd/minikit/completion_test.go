package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
)

func TestCompleteRecipes(t *testing.T) {
	code, out, _ := run(t, completeCommand, "recipes")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var want []string
	for _, r := range llbdefs.All() {
		want = append(want, r.Name)
	}
	if got := strings.Fields(out); !slices.Equal(got, want) || len(got) < 51 {
		t.Errorf("__complete recipes printed %d names, want the %d of the catalog with the extras", len(got), len(want))
	}
	if code, _, _ := run(t, completeCommand, "nosuch"); code != exitUsage {
		t.Errorf("__complete nosuch: exit %d, want 2", code)
	}
}

// script writes minikit's completion script for a shell into a file.
func script(t *testing.T, shell string) (text, path string) {
	t.Helper()
	code, out, errOut := run(t, "completion", shell)
	if code != exitOK || errOut != "" || out == "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
	}
	path = filepath.Join(t.TempDir(), "minikit."+shell)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return out, path
}

// Each script names every command and every flag of each (from the real
// flag sets), and is valid for its shell where the shell is installed.
func TestCompletionScripts(t *testing.T) {
	noDaemon(t)
	all := (app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).allFlags()
	for _, shell := range shellNames() {
		text, path := script(t, shell)
		for _, c := range commands() {
			var named bool
			switch shell {
			case "bash":
				named = strings.Contains(text, "    '"+c.name+"')\n")
			case "zsh":
				named = strings.Contains(text, "  ('"+c.name+"')\n") && strings.Contains(text, " '"+c.name+":")
			case "fish":
				named = strings.Contains(text, "-n '__minikit_first' -a '"+c.name+"' -d ")
			}
			if named == c.hidden {
				t.Errorf("%s: command %s (hidden %v) named: %v", shell, c.name, c.hidden, named)
			}
		}
		n := 0
		for _, cf := range all {
			cf.fs.VisitAll(func(f *flag.Flag) {
				n++
				var want string
				switch {
				case shell == "bash":
					want = flagName(f)
				case shell == "zsh":
					want = "'" + flagName(f) + ":"
				case len(f.Name) == 1:
					want = "'__minikit_at " + cf.path + "' -s " + f.Name
				default:
					want = "'__minikit_at " + cf.path + "' -l " + f.Name
				}
				if !strings.Contains(text, want) {
					t.Errorf("%s: %s %s missing (%q)", shell, cf.path, flagName(f), want)
				}
			})
		}
		if n < 40 {
			t.Errorf("%s: %d flags: the flag sets were not found", shell, n)
		}
		sh, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s is not installed: its script's content was checked, not its syntax", shell)
			continue
		}
		if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
	if code, _, errOut := run(t, "completion", "powershell"); code != exitUsage || !strings.Contains(errOut, "unknown shell") {
		t.Errorf("completion powershell: exit %d, %q", code, errOut)
	}
	if code, _, _ := run(t, "completion"); code != exitUsage {
		t.Errorf("completion without a shell: exit %d", code)
	}
}

// fakeMinikit is a shell function standing in for the minikit binary in
// the completion scripts: it prints the recipe names minikit prints.
func fakeMinikit(t *testing.T) []string {
	t.Helper()
	_, out, _ := run(t, completeCommand, "recipes")
	return strings.Fields(out)
}

// The bash script, run: what it completes at each point of a command line.
func TestBashCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Log("bash is not installed: TestCompletionScripts checked the script's content")
		return
	}
	noDaemon(t)
	_, path := script(t, "bash")
	recipes := fakeMinikit(t)
	complete := func(line string) []string {
		words := strings.Split(line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, bashQuote(w))
		}
		prog := `source "$1"
minikit() { [ "$1" = __complete ] && printf '%s\n' ` + strings.Join(recipes, " ") + `; }
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_minikit
printf '%s\n' "${COMPREPLY[@]}"
`
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bash, "-c", prog, "bash", path).Output()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return strings.Fields(string(out))
	}
	commandNames := func() []string {
		var n []string
		for _, c := range commands() {
			if !c.hidden {
				n = append(n, c.name)
			}
		}
		return n
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"minikit ", commandNames()},
		{"minikit sol", []string{"solve"}},
		{"minikit -", []string{"--help", "--version"}},
		{"minikit solve --paral", []string{"--parallel"}},
		{"minikit solve hello-go.golang.scr", nil},
		{"minikit test --all hello-c.gcc-st", nil},
		{"minikit solve --format ", nil},
		{"minikit daemon st", []string{"start", "status", "stop"}},
		{"minikit daemon status ", nil},
		{"minikit standins b", []string{"build"}},
		{"minikit standins build --on", []string{"--only"}},
		{"minikit help so", []string{"solve"}},
		{"minikit completion f", []string{"fish"}},
		{"minikit report -", []string{"--format", "--report", "-o"}},
		{"minikit list --ex", []string{"--extras"}},
		{"minikit nosuch ", nil},
	} {
		got := complete(tc.line)
		want := tc.want
		if prefix, ok := strings.CutPrefix(tc.line[strings.LastIndexByte(tc.line, ' ')+1:], "hello-"); ok {
			// A recipe name: whatever the catalog has under that prefix.
			for _, r := range recipes {
				if strings.HasPrefix(r, "hello-"+prefix) {
					want = append(want, r)
				}
			}
			if len(want) == 0 {
				t.Fatalf("no recipe starts with hello-%s", prefix)
			}
		}
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%q completes %q, want %q", tc.line, got, want)
		}
	}
}

// The fish script, run where fish is installed.
func TestFishCompletes(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Log("fish is not installed: TestCompletionScripts checked the script's content")
		return
	}
	noDaemon(t)
	_, path := script(t, "fish")
	recipes := fakeMinikit(t)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"minikit sol", []string{"solve"}},
		{"minikit solve --paral", []string{"--parallel"}},
		{"minikit solve hello-c.gcc-static.scr", []string{"hello-c.gcc-static.scratch"}},
		{"minikit daemon st", []string{"start", "status", "stop"}},
		{"minikit standins build --on", []string{"--only"}},
		{"minikit help so", []string{"solve"}},
		{"minikit report -", []string{"--format", "--report", "-o"}},
	} {
		prog := `source $argv[1]
function minikit; test "$argv[1]" = __complete; and printf '%s\n' ` + strings.Join(recipes, " ") + `; end
complete -C ` + fishQuote(tc.line)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, fish, "--no-config", "-c", prog, path).Output()
		cancel()
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q completes %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestAbout(t *testing.T) {
	for in, want := range map[string]string{
		"output: table or json":        "output: table or json",
		"recipes at once (default 16)": "recipes at once",
		"a; b":                         "a",
		strings.Repeat("word ", 30):    strings.TrimSpace(strings.Repeat("word ", 14)) + "...",
		"  spaced\n  out  ":            "spaced out",
	} {
		if got := about(in); got != want {
			t.Errorf("about(%q) = %q, want %q", in, got, want)
		}
	}
	if got := fishQuote(`it's a \ path`); got != `'it\'s a \\ path'` {
		t.Errorf("fishQuote: %s", got)
	}
	if got := bashQuote("it's"); got != `'it'\''s'` {
		t.Errorf("bashQuote: %s", got)
	}
}

// The zsh script, run where zsh is installed, with zsh's completion
// functions (_describe, compadd, _files) standing in: what it offers at
// each point of a command line.
func TestZshCompletes(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Log("zsh is not installed: TestCompletionScripts checked the script's content")
		return
	}
	noDaemon(t)
	_, path := script(t, "zsh")
	recipes := fakeMinikit(t)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"minikit sol", []string{"solve"}},
		{"minikit solve --paral", []string{"--parallel"}},
		{"minikit solve --format ", []string{"<files>"}},
		{"minikit solve hello-c.gcc-static.scr", []string{"hello-c.gcc-static.scratch"}},
		{"minikit daemon st", []string{"start", "status", "stop"}},
		{"minikit standins build --on", []string{"--only"}},
		{"minikit help so", []string{"solve"}},
		{"minikit report x", []string{"<files>"}},
		{"minikit explore x", []string{"<dirs>"}},
		{"minikit report -", []string{"--format", "--report", "-o"}},
	} {
		var quoted []string
		for _, w := range strings.Split(tc.line, " ") {
			quoted = append(quoted, bashQuote(w))
		}
		// The stand-ins print every candidate; the prefix is matched
		// here, as zsh would.
		prog := `compdef() { :; }
_describe() { print -l -- ${${(P)4}%%:*}; }
compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }
_files() { print -- '<files>'; }
_directories() { print -- '<dirs>'; }
minikit() { [[ $1 == __complete ]] && print -l -- ` + strings.Join(recipes, " ") + `; }
source $1
words=(` + strings.Join(quoted, " ") + `)
CURRENT=${#words}
_minikit
`
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, zsh, "-f", "-c", prog, "zsh", path).Output()
		cancel()
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		cur := tc.line[strings.LastIndexByte(tc.line, ' ')+1:]
		var got []string
		for _, w := range strings.Fields(string(out)) {
			if strings.HasPrefix(w, cur) || strings.HasPrefix(w, "<") {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q offers %q, want %q", tc.line, got, tc.want)
		}
	}
}
