package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
)

// compareFixtures writes an old and a new report: hello-go.golang.scratch
// grows from 2,400,000 to 2,592,000 bytes (8 %), hello-c.gcc.scratch stays,
// hello-py.python is removed, pyds.python added.
func compareFixtures(t *testing.T) (oldFile, newFile string) {
	t.Helper()
	img := func(u, c int64) *measure.Image { return &measure.Image{Uncompressed: u, Compressed: c} }
	ok := func(name string, u, c int64) report.Recipe {
		return report.Recipe{Name: name, Program: strings.SplitN(name, ".", 2)[0], Status: report.StatusOK, Image: img(u, c)}
	}
	dir := t.TempDir()
	write := func(name string, rs ...report.Recipe) string {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := report.WriteJSON(f, &report.Report{Generated: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Recipes: rs}); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}
	oldFile = write("old.json", ok("hello-c.gcc.scratch", 17_920, 2_260), ok("hello-go.golang.scratch", 2_400_000, 1_430_000), ok("hello-py.python", 1e8, 4e7))
	newFile = write("new.json", ok("hello-c.gcc.scratch", 17_920, 2_260), ok("hello-go.golang.scratch", 2_592_000, 1_440_000), ok("pyds.python", 6e8, 2e8))
	return oldFile, newFile
}

func TestCompare(t *testing.T) {
	oldFile, newFile := compareFixtures(t)
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   string
		noStdout string
	}{
		{"no limit", nil, exitOK, []string{"hello-go.golang.scratch", "+192 kB (+8.0%)", "pyds.python", "added", "hello-py.python", "removed"}, "", "hello-c.gcc.scratch"},
		{"all", []string{"--all"}, exitOK, []string{"hello-c.gcc.scratch"}, "", ""},
		{"within", []string{"--max-growth", "10%", "--max-growth", "200kB"}, exitOK, nil, "", "over its growth limit"},
		{"relative", []string{"--max-growth", "5%"}, exitUnexpected, []string{"over its growth limit: hello-go.golang.scratch"}, "1 recipe size(s) over the growth limit", ""},
		{"absolute", []string{"--max-growth=100kB"}, exitUnexpected, nil, "1 recipe size(s) over the growth limit", ""},
		{"per name", []string{"--max-growth", "5%", "--max-growth", "hello-go.*=10%"}, exitOK, nil, "", ""},
		{"compressed", []string{"--max-compressed-growth", "0.5%"}, exitUnexpected, []string{"compressed over 0.5%"}, "over the growth limit", ""},
		{"markdown", []string{"--format", "markdown", "--max-growth", "5%"}, exitUnexpected,
			[]string{"## minikit compare", "**1 over the growth limit:**", "| hello-go.golang.scratch | changed |"},
			"over its growth limit: hello-go.golang.scratch: uncompressed 2.40 MB -> 2.59 MB", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"compare", oldFile, newFile}, tc.args...)
			code, out, errs := run(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if tc.noStdout != "" && strings.Contains(out, tc.noStdout) {
				t.Errorf("stdout has %q:\n%s", tc.noStdout, out)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr %q lacks %q", errs, tc.stderr)
			}
		})
	}
}

func TestCompareJSON(t *testing.T) {
	oldFile, newFile := compareFixtures(t)
	code, out, errs := run(t, "compare", "--format", "json", "--max-growth", "5%", oldFile, newFile)
	if code != exitUnexpected {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var doc struct {
		Violations []struct {
			Recipe string `json:"recipe"`
			Growth int64  `json:"growth"`
		} `json:"violations"`
		Summary struct {
			Added, Removed, Changed, Unchanged int
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Violations) != 1 || doc.Violations[0].Recipe != "hello-go.golang.scratch" || doc.Violations[0].Growth != 192_000 {
		t.Errorf("violations %+v", doc.Violations)
	}
	if s := doc.Summary; s.Added != 1 || s.Removed != 1 || s.Changed != 1 || s.Unchanged != 1 {
		t.Errorf("summary %+v", s)
	}
}

// Bad input exits 2 and says what is wrong.
func TestCompareBadInput(t *testing.T) {
	oldFile, newFile := compareFixtures(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	table := file("table.txt", "NAME  OUTCOME\nhello-c.gcc  ok\n")
	list := file("list.json", `[{"name": "hello-c.gcc"}]`)
	v2 := file("v2.json", `{"version": 2, "recipes": []}`)
	missing := filepath.Join(dir, "missing.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{oldFile}, "want two reports"},
		{[]string{oldFile, newFile, newFile}, "want two reports"},
		{[]string{oldFile, missing}, "no such file or directory"},
		{[]string{table, newFile}, table + ": not a minikit solve report"},
		{[]string{oldFile, list}, list + ": not a minikit solve report"},
		{[]string{v2, newFile}, "report format version not supported: the report is version 2"},
		{[]string{"--format", "html", oldFile, newFile}, "--format must be table, json or markdown"},
		{[]string{"--max-growth", "5", oldFile, newFile}, ""}, // 5 bytes: valid
		{[]string{"--max-growth", "five%", oldFile, newFile}, `--max-growth: bad growth limit "five%"`},
		{[]string{"--max-growth", "hello-go.golang.scrach=5%", oldFile, newFile}, `"hello-go.golang.scrach" matches none of the 4 recipe(s)`},
		{[]string{"--max-growth", "5%", "--max-growth", "6%", oldFile, newFile}, "already has a relative limit"},
		{[]string{"--nosuch", oldFile, newFile}, "flag provided but not defined"},
	} {
		code, _, errs := run(t, append([]string{"compare"}, tc.args...)...)
		if tc.want == "" {
			if code == exitUsage {
				t.Errorf("compare %q: exit 2, stderr %q", tc.args, errs)
			}
			continue
		}
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("compare %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}
