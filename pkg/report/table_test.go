package report

import (
	"bytes"
	"strings"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.00 kB", 1500: "1.50 kB", 20_480: "20.5 kB", 999_499: "999 kB",
		999_600: "1.00 MB", 1_234_567: "1.23 MB", 123_456_789: "123 MB", 1_048_576_000: "1.05 GB", -2000: "-2.00 kB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := WriteTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != len(rep.Recipes)+1 {
		t.Fatalf("%d lines for %d recipes:\n%s", len(lines), len(rep.Recipes), buf.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME OUTCOME UNCOMPRESSED COMPRESSED DOCKER SIZE LAYERS ADDED NOTES" {
		t.Errorf("header %q", lines[0])
	}
	// Built recipes by uncompressed size, then the others.
	byName := map[string]Recipe{}
	for _, r := range rep.Recipes {
		byName[r.Name] = r
	}
	var last int64 = -1
	sawUnbuilt := false
	for _, line := range lines[1:] {
		name := strings.Fields(line)[0]
		r, ok := byName[name]
		if !ok {
			t.Fatalf("line %q names no recipe", line)
		}
		if r.Image == nil {
			sawUnbuilt = true
			if !strings.Contains(line, "  -  ") {
				t.Errorf("unbuilt %s shows a size: %q", name, line)
			}
			continue
		}
		if sawUnbuilt {
			t.Errorf("built %s after an unbuilt recipe", name)
		}
		if r.Image.Uncompressed < last {
			t.Errorf("%s out of order", name)
		}
		last = r.Image.Uncompressed
		for _, want := range []string{FormatBytes(r.Image.Uncompressed), FormatBytes(r.Image.Compressed), FormatBytes(r.Image.DockerSize), "+" + FormatBytes(r.Image.AddedUncompressed), r.Outcome()} {
			if !strings.Contains(line, want) {
				t.Errorf("line of %s lacks %q: %q", name, want, line)
			}
		}
		if r.StandIn != strings.Contains(line, "stand-in") {
			t.Errorf("line of %s: stand-in marker wrong: %q", name, line)
		}
	}
	out := buf.String()
	for _, want := range []string{"20.0 kB", "1.00 GB", "exit 127", "exit 1 (unexpected)", "expected-failure", "over budget", "/bin/sh: javac"} {
		if want == "/bin/sh: javac" {
			// only the error's first line is shown
			if strings.Contains(out, want) {
				t.Errorf("the table shows more than the error's first line")
			}
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if err := WriteTable(&buf, nil); err == nil {
		t.Error("no error for a nil report")
	}
}
