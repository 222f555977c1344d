package explore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree writes files (name -> content) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goMain = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n"

func TestDetectPrograms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		check func(t *testing.T, p Program)
	}{
		{"go module at root", map[string]string{"go.mod": "module example.com/Tool\n\ngo 1.22\n", "main.go": goMain, "README.md": "x"}, func(t *testing.T, p Program) {
			if p.Kind != Go || p.Module != "example.com/Tool" || p.MainPkg != "." || p.Name != "tool" || p.GoDeps || p.NeedsTZ {
				t.Errorf("%+v", p)
			}
			if !slices.Equal(p.Files, []string{"go.mod", "main.go"}) {
				t.Errorf("files %q", p.Files)
			}
		}},
		{"go module with cmd/x and deps", map[string]string{
			"go.mod":          "module example.com/m\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n",
			"go.sum":          "github.com/google/uuid v1.6.0 h1:x=\n",
			"lib.go":          "package m\n",
			"cmd/srv/main.go": "package main\n\nimport \"time\"\n\nfunc main() { time.LoadLocation(\"Europe/Paris\") }\n",
		}, func(t *testing.T, p Program) {
			if p.Kind != Go || p.MainPkg != "./cmd/srv" || p.Name != "srv" || !p.GoDeps {
				t.Errorf("%+v", p)
			}
			// LoadLocation is in cmd/srv: NeedsTZ reads the main package.
			if !p.NeedsTZ {
				t.Error("NeedsTZ not set for a main package calling time.LoadLocation")
			}
		}},
		{"go module with cgo C file", map[string]string{"go.mod": "module m\n", "main.go": goMain, "helper.c": "int f(void){return 1;}\n"}, func(t *testing.T, p Program) {
			if p.Kind != Go {
				t.Errorf("%+v", p)
			}
		}},
		{"one c file with libm", map[string]string{"prog.c": "#include <stdio.h>\n#include <math.h>\nint main(){printf(\"%f\\n\", sqrt(2.0));}\n"}, func(t *testing.T, p Program) {
			if p.Kind != C || p.Source != "prog.c" || p.Name != "prog" || !slices.Equal(p.Libs, []string{"-lm"}) || p.Makefile != "" {
				t.Errorf("%+v", p)
			}
		}},
		{"makefile with all", map[string]string{"Makefile": "CFLAGS=-O2\nall: tool\n\ntool: a.o b.o\n", "a.c": "", "b.c": ""}, func(t *testing.T, p Program) {
			if p.Kind != C || p.Makefile != "Makefile" || p.Source != "" {
				t.Errorf("%+v", p)
			}
		}},
		{"rust crate without deps", map[string]string{"Cargo.toml": "[package]\nname = \"Hello-RS\"\nversion = \"0.1.0\"\n\n[dependencies]\n", "src/main.rs": "fn main(){}\n"}, func(t *testing.T, p Program) {
			if p.Kind != Rust || p.Name != "hello-rs" || p.Vendored {
				t.Errorf("%+v", p)
			}
		}},
		{"rust crate vendored", map[string]string{"Cargo.toml": "[package]\nname = \"a\"\n[[bin]]\nname = \"tool\"\npath = \"src/main.rs\"\n[dependencies]\nureq = \"2\"\n", "src/main.rs": "", "vendor/ureq/Cargo.toml": ""}, func(t *testing.T, p Program) {
			if p.Kind != Rust || p.Name != "tool" || !p.Vendored || !p.NeedsCA {
				t.Errorf("%+v", p)
			}
		}},
		{"python with requirements", map[string]string{"app.py": "print('hi')\n", "requirements.txt": "pyyaml\n"}, func(t *testing.T, p Program) {
			if p.Kind != Python || p.Source != "app.py" || p.Requirements != "requirements.txt" || p.Name != "app" {
				t.Errorf("%+v", p)
			}
		}},
		{"java", map[string]string{"Hello.java": "public class Hello {\n  public static void main(String[] a) { System.out.println(\"hi\"); }\n}\n"}, func(t *testing.T, p Program) {
			if p.Kind != Java || p.Class != "Hello" || p.Name != "hello" {
				t.Errorf("%+v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			p, err := Detect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if p.Dir != dir {
				t.Errorf("dir %s, want %s", p.Dir, dir)
			}
			tc.check(t, p)
		})
	}
}

func TestDetectErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		several bool
		want    []string // in the message
	}{
		{"empty", map[string]string{}, false, []string{"no program found", "a Go module with a main package", "an empty directory"}},
		{"only text", map[string]string{"notes.txt": "x"}, false, []string{"no program found", "notes.txt"}},
		{"go without main", map[string]string{"go.mod": "module m\n", "lib.go": "package m\n"}, false, []string{"go.mod (module m) but no package main"}},
		{"go main behind a build tag", map[string]string{"go.mod": "module m\n", "main.go": "//go:build ignore\n\n" + goMain}, false, []string{"no package main"}},
		{"go deps without go.sum", map[string]string{"go.mod": "module m\nrequire github.com/google/uuid v1.6.0\n", "main.go": goMain}, false, []string{"no go.sum"}},
		{"go files, no go.mod", map[string]string{"main.go": goMain}, false, []string{"no go.mod"}},
		{"two c files", map[string]string{"a.c": "", "b.c": ""}, false, []string{"2 .c files (a.c, b.c) and no Makefile"}},
		{"makefile without all", map[string]string{"Makefile": "build:\n\tcc a.c\n", "a.c": ""}, false, []string{"Makefile with no all target"}},
		{"rust deps not vendored", map[string]string{"Cargo.toml": "[package]\nname = \"a\"\n[dependencies]\nserde = \"1\"\n", "src/main.rs": ""}, false, []string{"dependencies (serde) that are not vendored"}},
		{"java without main", map[string]string{"A.java": "class A {}\n"}, false, []string{"A.java has no main method"}},
		{"two py", map[string]string{"a.py": "", "b.py": ""}, false, []string{"2 .py files"}},
		{"go and python", map[string]string{"go.mod": "module m\n", "main.go": goMain, "tool.py": "print(1)\n"}, true, []string{"several programs", "a Go module (go.mod, main.go)", "a Python script (tool.py)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			_, err := Detect(dir)
			var de *DetectError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DetectError", err)
			}
			if de.Several() != tc.several {
				t.Errorf("Several() = %v, want %v", de.Several(), tc.several)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

func TestDetectNotADirectory(t *testing.T) {
	dir := writeTree(t, map[string]string{"f": "x"})
	var de *DetectError
	if _, err := Detect(filepath.Join(dir, "f")); err == nil || errors.As(err, &de) {
		t.Errorf("a file: err = %v, want an error that is not a DetectError", err)
	}
	if _, err := Detect(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: err = %v, want ErrNotExist", err)
	}
}

func TestProgramName(t *testing.T) {
	for in, want := range map[string]string{"My Tool": "my-tool", "héllo": "hllo", "...": "app", "a.b": "a-b"} {
		if got := programName(in); got != want {
			t.Errorf("programName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := programName("", "dir"); got != "dir" {
		t.Errorf("fallback: %q", got)
	}
}
