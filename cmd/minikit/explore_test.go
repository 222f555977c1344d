package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad explore command lines and directories exit 2 before anything
// connects to a daemon.
func TestExploreBadInputExitsTwo(t *testing.T) {
	prog := t.TempDir()
	if err := os.WriteFile(filepath.Join(prog, "calc.c"), []byte("int main(void){return 0;}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"explore"}, "give one directory"},
		{[]string{"explore", prog, prog}, "give one directory"},
		{[]string{"explore", empty}, "no program found"},
		{[]string{"explore", "--bases", "scratch,nope", prog}, `run base "nope"`},
		{[]string{"explore", "--probe", "https://:8080/", prog}, "--probe"},
		{[]string{"explore", "--probe", "http://:8080/", "--expect-output", "x", prog}, "give one of them"},
		{[]string{"explore", "--expect-output", "(", prog}, "--expect-output"},
		{[]string{"explore", "--env", "NOVALUE", prog}, "want KEY=VALUE"},
		{[]string{"explore", "--args", "'unterminated", prog}, "--args"},
		{[]string{"explore", "--format", "xml", prog}, "--format"},
		{[]string{"explore", "--output", "zip=x", prog}, "unknown kind"},
		{[]string{"explore", "--parallel", "0", prog}, "--parallel"},
	} {
		t.Setenv("MINIKIT_HOME", t.TempDir())
		t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/minikit.sock")
		code, _, stderr := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr, tc.want)
		}
	}
}
