package sourcedate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repo makes a git repository in a new directory; each commit is
// (unix seconds, files written before it).
func repo(t *testing.T, gomod string, commits ...commit) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	run := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run(nil, "init", "-q")
	write(t, dir, "go.mod", gomod)
	for _, c := range commits {
		for _, f := range c.files {
			write(t, dir, f, f+" at "+c.at)
		}
		date := "GIT_COMMITTER_DATE=@" + c.at + " +0000"
		run(nil, "add", "-A")
		run([]string{date, "GIT_AUTHOR_DATE=@" + c.at + " +0000"}, "commit", "-q", "-m", c.at)
	}
	return dir
}

type commit struct {
	at    string
	files []string
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ptr(s string) *string { return &s }

func TestResolveExplicit(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir() // in no repository
	for _, c := range []struct {
		name    string
		l       Lookup
		want    int64 // -1: off
		source  string
		wantErr string
	}{
		{"flag seconds", Lookup{Flag: ptr("1700000000"), Env: "5"}, 1700000000, "--source-date-epoch", ""},
		{"flag zero", Lookup{Flag: ptr("0")}, 0, "--source-date-epoch", ""},
		{"flag off beats env", Lookup{Flag: ptr("off"), Env: "5"}, -1, "--source-date-epoch", ""},
		{"flag empty is off", Lookup{Flag: ptr("")}, -1, "--source-date-epoch", ""},
		{"env", Lookup{Env: "1600000000", Stamp: "7"}, 1600000000, "$SOURCE_DATE_EPOCH", ""},
		{"env off", Lookup{Env: "off"}, -1, "$SOURCE_DATE_EPOCH", ""},
		{"flag negative", Lookup{Flag: ptr("-1")}, 0, "", "--source-date-epoch=-1: want unix seconds"},
		{"flag junk", Lookup{Flag: ptr("yesterday")}, 0, "", "--source-date-epoch=yesterday: want unix seconds"},
		{"env junk", Lookup{Env: "1.5"}, 0, "", "$SOURCE_DATE_EPOCH=1.5"},
		{"git outside any repository", Lookup{Flag: ptr("git"), WorkDir: outside}, 0, "", "--source-date-epoch=git: git -C " + outside},
		{"bad stamp", Lookup{WorkDir: outside, Stamp: "x"}, 0, "", `build stamp "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := Resolve(ctx, c.l)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, %v; want error with %q", e, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want < 0 {
				if !e.Off || !e.Time.IsZero() {
					t.Errorf("got %v, want off", e)
				}
			} else if e.Off || e.Time.Unix() != c.want || e.Time.Location() != time.UTC {
				t.Errorf("got %v, want %d UTC", e, c.want)
			}
			if !strings.HasPrefix(e.Source, c.source) {
				t.Errorf("source %q, want %q", e.Source, c.source)
			}
		})
	}
}

func TestResolveChain(t *testing.T) {
	ctx := context.Background()
	// minikit's checkout: samples/ last touched at 1500000000, a later
	// commit elsewhere must not count.
	mk := repo(t, module+"\n\ngo 1.26\n",
		commit{"1400000000", []string{"samples/samples.go", "samples/hello.c"}},
		commit{"1500000000", []string{"samples/hello.c"}},
		commit{"1600000000", []string{"README.md"}})
	write(t, mk, "cmd/x/keep", "untracked: git still finds the checkout")
	// another project's repository, with a samples/ too.
	other := repo(t, "module example.com/other\n",
		commit{"1450000000", []string{"samples/samples.go", "mine/a.txt"}},
		commit{"1550000000", []string{"samples/b.txt"}})
	outside := t.TempDir()

	for _, c := range []struct {
		name   string
		l      Lookup
		want   int64
		source string
	}{
		{"checkout top", Lookup{WorkDir: mk, Stamp: "7"}, 1500000000, "git: last commit touching " + filepath.Join(mk, "samples")},
		{"checkout subdirectory", Lookup{WorkDir: filepath.Join(mk, "cmd", "x")}, 1500000000, "git"},
		{"explicit git", Lookup{Flag: ptr("git"), WorkDir: mk}, 1500000000, "git"},
		{"git beats stamp, env beats git", Lookup{Env: "42", WorkDir: mk, Stamp: "7"}, 42, "$SOURCE_DATE_EPOCH"},
		{"--samples in a repository", Lookup{SamplesDir: filepath.Join(other, "mine"), WorkDir: mk}, 1450000000, "git: last commit touching " + filepath.Join(other, "mine")},
		{"another project: stamp", Lookup{WorkDir: other, Stamp: "7"}, 7, "build stamp"},
		{"no repository: stamp", Lookup{WorkDir: outside, Stamp: "1234"}, 1234, "build stamp"},
		{"--samples outside a repository: stamp", Lookup{SamplesDir: outside, WorkDir: mk, Stamp: "1234"}, 1234, "build stamp"},
		{"nothing: fallback", Lookup{WorkDir: outside}, 0, "fallback"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := Resolve(ctx, c.l)
			if err != nil {
				t.Fatal(err)
			}
			if e.Off || e.Time.Unix() != c.want || !strings.HasPrefix(e.Source, c.source) {
				t.Errorf("got %v, want %d from %q", e, c.want, c.source)
			}
		})
	}

	if _, err := Resolve(ctx, Lookup{Flag: ptr("git"), WorkDir: other}); err == nil || !strings.Contains(err.Error(), "not minikit's checkout") {
		t.Errorf("git in another project: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if e, err := Resolve(canceled, Lookup{WorkDir: mk, Stamp: "7"}); err == nil {
		t.Errorf("canceled: got %v", e)
	}
}

func TestEpochString(t *testing.T) {
	e := Epoch{Time: time.Unix(1700000000, 0).UTC(), Source: "git"}
	if got, want := e.String(), "1700000000, 2023-11-14T22:13:20Z (git)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := (Epoch{Off: true, Source: "$SOURCE_DATE_EPOCH"}).String(); got != "off ($SOURCE_DATE_EPOCH)" {
		t.Errorf("off: %q", got)
	}
}
