// Package explore finds the smallest image that really runs a program it
// has never seen: it detects what the directory holds (Detect), generates
// candidate images from the stage vocabulary of pkg/llbdefs (Candidates:
// build variants crossed with run bases, each build variant one stage
// shared by all its run bases), builds and runs them all with the user's
// check through pkg/runner (Explore), and ranks them (pkg/report), the
// winner rendered as a Dockerfile that builds the same image.
package explore

import (
	"bufio"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
)

// Kind is what sort of program a directory holds.
type Kind string

const (
	Go     Kind = "go"     // a Go module with a main package
	C      Kind = "c"      // one .c file, or a Makefile with an all target
	Rust   Kind = "rust"   // a Cargo crate, dependencies vendored or none
	Python Kind = "python" // one .py script, optional requirements.txt
	Java   Kind = "java"   // one .java file with a main method
)

// A Program is what Detect found in a directory.
type Program struct {
	// Dir is the directory, absolute.
	Dir string `json:"dir"`
	// Name names the program in candidate names and is the executable's
	// file name: the Go module's last path element, the crate's package
	// name, the source file's name without extension, else the
	// directory's name; letters, digits, '_', '-' and '.' only.
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Files are the files that made Detect decide, relative to Dir.
	Files []string `json:"files"`

	// Go: the module path and the main package's directory ("." or
	// "./cmd/x"), whether go.sum exists and the module has requirements.
	Module  string `json:"module,omitempty"`
	MainPkg string `json:"main_package,omitempty"`
	GoDeps  bool   `json:"go_dependencies,omitempty"`

	// C: the one source file, or the Makefile; Libs are the libraries
	// the source's includes call for (-lm for <math.h>, -pthread for
	// <pthread.h>), for a single file.
	Source   string   `json:"source,omitempty"`
	Makefile string   `json:"makefile,omitempty"`
	Libs     []string `json:"libs,omitempty"`

	// Rust: the binary's name is Name; Vendored is set when the crate's
	// dependencies are in vendor/.
	Vendored bool `json:"vendored,omitempty"`

	// Python: the script is Source; Requirements is requirements.txt when
	// present.
	Requirements string `json:"requirements,omitempty"`

	// Java: the source is Source, Class the class holding main.
	Class string `json:"class,omitempty"`

	// NeedsCA and NeedsTZ say whether the program needs a CA bundle
	// (/etc/ssl/certs/ca-certificates.crt) or the time zone database
	// (/usr/share/zoneinfo) at run time, as far as the sources tell (see
	// needs.go); for Go, Explore decides CA from the build's dependency
	// list.
	NeedsCA bool `json:"needs_ca,omitempty"`
	NeedsTZ bool `json:"needs_tz,omitempty"`
}

// What Detect looks for, in the words of its error.
var lookedFor = []string{
	"a Go module with a main package (go.mod and package main)",
	"C sources (one .c file, or a Makefile with an all target)",
	"a Rust crate (Cargo.toml, dependencies vendored or none)",
	"a Python script (one .py file, optional requirements.txt)",
	"a single-file Java program (one .java file with main)",
}

// A DetectError says that a directory holds no program Detect knows, or
// several: what it looked for and what it found.
type DetectError struct {
	Dir string
	// Programs are the programs found (two or more: Several), Found the
	// other things seen that are not a program by themselves ("go.mod
	// but no package main", "3 .c files and no Makefile").
	Programs []string
	Found    []string
}

// Several reports whether the directory holds more than one program.
func (e *DetectError) Several() bool { return len(e.Programs) > 1 }

func (e *DetectError) Error() string {
	if e.Several() {
		return fmt.Sprintf("%s holds several programs: %s; give a directory holding one", e.Dir, strings.Join(e.Programs, "; "))
	}
	found := "nothing of the kind"
	if len(e.Found) > 0 {
		found = strings.Join(e.Found, "; ")
	}
	return fmt.Sprintf("no program found in %s: looked for %s; found %s", e.Dir, strings.Join(lookedFor, ", "), found)
}

// Detect says what program dir holds (see Kind). A directory with none,
// or several, gives a *DetectError; an unreadable one, the I/O error.
func Detect(dir string) (Program, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Program{}, fmt.Errorf("explore %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Program{}, fmt.Errorf("explore: %w", err)
	}
	if !fi.IsDir() {
		return Program{}, fmt.Errorf("explore: %s is not a directory", dir)
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return Program{}, fmt.Errorf("explore: %w", err)
	}
	byExt := map[string][]string{}
	has := map[string]bool{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			if e.IsDir() {
				has[e.Name()+"/"] = true
			}
			continue
		}
		has[e.Name()] = true
		byExt[filepath.Ext(e.Name())] = append(byExt[filepath.Ext(e.Name())], e.Name())
	}
	d := detector{dir: abs, has: has, byExt: byExt}
	var found []Program
	var notes []string
	for _, f := range []func() (*Program, string, error){d.goModule, d.rustCrate, d.cProgram, d.pythonScript, d.javaProgram} {
		p, note, err := f()
		if err != nil {
			return Program{}, err
		}
		if p != nil {
			found = append(found, *p)
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if len(notes) == 0 {
			notes = []string{summarize(ents)}
		}
		return Program{}, &DetectError{Dir: dir, Found: notes}
	}
	e := &DetectError{Dir: dir, Found: notes}
	for _, p := range found {
		e.Programs = append(e.Programs, fmt.Sprintf("%s (%s)", kindName(p.Kind), strings.Join(p.Files, ", ")))
	}
	return Program{}, e
}

func kindName(k Kind) string {
	switch k {
	case Go:
		return "a Go module"
	case C:
		return "a C program"
	case Rust:
		return "a Rust crate"
	case Python:
		return "a Python script"
	case Java:
		return "a Java program"
	}
	return string(k)
}

// summarize says what an unrecognized directory holds, briefly.
func summarize(ents []os.DirEntry) string {
	if len(ents) == 0 {
		return "an empty directory"
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 8 {
		return fmt.Sprintf("%d entries (%s, ...)", len(names), strings.Join(names[:8], ", "))
	}
	return strings.Join(names, ", ")
}

type detector struct {
	dir   string
	has   map[string]bool
	byExt map[string][]string
}

// programName makes a name usable in candidate names and as a file name.
func programName(candidates ...string) string {
	for _, c := range candidates {
		var b strings.Builder
		for _, r := range c {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
				b.WriteRune(r)
			case r >= 'A' && r <= 'Z':
				b.WriteRune(r - 'A' + 'a')
			case r == '.' || r == ' ':
				b.WriteRune('-')
			}
		}
		n := strings.Trim(b.String(), "-")
		if len(n) > 40 {
			n = n[:40]
		}
		if n != "" {
			return n
		}
	}
	return "app"
}

// goContext reads Go packages as a linux/amd64 build would.
func goContext() build.Context {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", true
	ctx.GOPATH = ""
	return ctx
}

func (d detector) goModule() (*Program, string, error) {
	if !d.has["go.mod"] {
		if len(d.byExt[".go"]) > 0 {
			return nil, fmt.Sprintf("%d .go file(s) but no go.mod (run go mod init)", len(d.byExt[".go"])), nil
		}
		return nil, "", nil
	}
	dt, err := os.ReadFile(filepath.Join(d.dir, "go.mod"))
	if err != nil {
		return nil, "", fmt.Errorf("explore: %w", err)
	}
	mf, err := modfile.ParseLax("go.mod", dt, nil)
	if err != nil {
		return nil, fmt.Sprintf("go.mod that does not parse (%v)", err), nil
	}
	if mf.Module == nil {
		return nil, "go.mod with no module line", nil
	}
	mod := mf.Module.Mod.Path
	files := []string{"go.mod"}
	if d.has["go.sum"] {
		files = append(files, "go.sum")
	}
	bctx := goContext()
	mains := map[string][]string{}
	check := func(rel string) {
		pkg, err := bctx.ImportDir(filepath.Join(d.dir, rel), 0)
		if err == nil && pkg.Name == "main" {
			mains[rel] = pkg.GoFiles
		}
	}
	check(".")
	if len(mains) == 0 {
		// cmd/NAME, the usual layout of a module whose command is not at
		// its root.
		ents, _ := os.ReadDir(filepath.Join(d.dir, "cmd"))
		for _, e := range ents {
			if e.IsDir() {
				check("cmd/" + e.Name())
			}
		}
	}
	switch len(mains) {
	case 0:
		return nil, "go.mod (module " + mod + ") but no package main at its root or in cmd/*", nil
	case 1:
	default:
		var ds []string
		for k := range mains {
			ds = append(ds, k)
		}
		sort.Strings(ds)
		return nil, "go.mod with several main packages (" + strings.Join(ds, ", ") + ")", nil
	}
	var rel string
	for k := range mains {
		rel = k
	}
	for _, f := range mains[rel] {
		files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
	}
	p := &Program{Dir: d.dir, Kind: Go, Module: mod, GoDeps: len(mf.Require) > 0, Files: files}
	p.MainPkg = "."
	name := mod[strings.LastIndex(mod, "/")+1:]
	if rel != "." {
		p.MainPkg = "./" + rel
		name = filepath.Base(rel)
	}
	p.Name = programName(name, filepath.Base(d.dir))
	if p.GoDeps && !d.has["go.sum"] {
		return nil, "go.mod with requirements but no go.sum (run go mod tidy)", nil
	}
	p.NeedsTZ = d.grepGo(rel, loadLocation)
	return p, "", nil
}

// loadLocation is a Go call that reads the time zone database.
var loadLocation = regexp.MustCompile(`\btime\.LoadLocation\b|\btime\.LoadLocationFromTZData\b`)

// grepGo reports whether a .go file of the package in rel (its own files,
// not its dependencies) matches re.
func (d detector) grepGo(rel string, re *regexp.Regexp) bool {
	ents, _ := os.ReadDir(filepath.Join(d.dir, rel))
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			if dt, err := os.ReadFile(filepath.Join(d.dir, rel, e.Name())); err == nil && re.Match(dt) {
				return true
			}
		}
	}
	return false
}

func (d detector) rustCrate() (*Program, string, error) {
	if !d.has["Cargo.toml"] {
		if n := len(d.byExt[".rs"]); n > 0 {
			return nil, fmt.Sprintf("%d .rs file(s) but no Cargo.toml", n), nil
		}
		return nil, "", nil
	}
	f, err := os.Open(filepath.Join(d.dir, "Cargo.toml"))
	if err != nil {
		return nil, "", fmt.Errorf("explore: %w", err)
	}
	defer f.Close()
	m, err := readCargo(f)
	if err != nil {
		return nil, "Cargo.toml that does not parse (" + err.Error() + ")", nil
	}
	if m.workspace && m.pkgName == "" {
		return nil, "a Cargo workspace (explore one of its crates)", nil
	}
	if m.pkgName == "" {
		return nil, "Cargo.toml with no [package] name", nil
	}
	main := "src/main.rs"
	if _, err := os.Stat(filepath.Join(d.dir, main)); err != nil && m.binName == "" {
		return nil, "Cargo.toml but no src/main.rs (a library crate?)", nil
	}
	vendored := d.has["vendor/"]
	if len(m.deps) > 0 && !vendored {
		return nil, fmt.Sprintf("a Rust crate with dependencies (%s) that are not vendored (run cargo vendor)", strings.Join(m.deps, ", ")), nil
	}
	name := m.pkgName
	if m.binName != "" {
		name = m.binName
	}
	files := []string{"Cargo.toml"}
	if d.has["Cargo.lock"] {
		files = append(files, "Cargo.lock")
	}
	files = append(files, main)
	if vendored {
		files = append(files, "vendor/")
	}
	p := &Program{Dir: d.dir, Kind: Rust, Name: programName(name), Files: files, Vendored: vendored}
	for _, dep := range m.deps {
		switch dep {
		case "reqwest", "ureq", "rustls", "native-tls", "openssl", "hyper-tls", "hyper-rustls", "webpki-roots":
			p.NeedsCA = dep != "webpki-roots" // webpki-roots embeds its roots
		case "chrono-tz", "tz-rs", "tzfile":
			p.NeedsTZ = dep == "tzfile" || dep == "tz-rs"
		}
	}
	return p, "", nil
}

// cargo is what readCargo takes from a Cargo.toml.
type cargo struct {
	pkgName, binName string
	deps             []string
	workspace        bool
}

var (
	tomlSection = regexp.MustCompile(`^\[\[?\s*([A-Za-z0-9_.\-"]+)\s*\]\]?\s*(#.*)?$`)
	tomlKey     = regexp.MustCompile(`^([A-Za-z0-9_\-"]+)\s*=\s*(.*)$`)
	tomlString  = regexp.MustCompile(`^"([^"]*)"`)
)

// readCargo reads the little of a Cargo.toml that Detect needs: the
// package name, the first [[bin]] name, and the dependency names. It is
// a line reader, not a TOML parser: a value spread over lines is skipped.
func readCargo(f *os.File) (cargo, error) {
	var m cargo
	section := ""
	bins := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			sm := tomlSection.FindStringSubmatch(line)
			if sm == nil {
				return m, fmt.Errorf("section header %q", line)
			}
			section = strings.Trim(sm[1], `"`)
			if section == "workspace" {
				m.workspace = true
			}
			if section == "bin" && strings.HasPrefix(line, "[[") {
				bins++
			}
			if dep, ok := strings.CutPrefix(section, "dependencies."); ok {
				m.deps = append(m.deps, dep)
			}
			continue
		}
		km := tomlKey.FindStringSubmatch(line)
		if km == nil {
			continue
		}
		key, val := strings.Trim(km[1], `"`), km[2]
		switch {
		case section == "package" && key == "name":
			if s := tomlString.FindStringSubmatch(val); s != nil {
				m.pkgName = s[1]
			}
		case section == "bin" && bins == 1 && key == "name":
			if s := tomlString.FindStringSubmatch(val); s != nil {
				m.binName = s[1]
			}
		case section == "dependencies":
			m.deps = append(m.deps, key)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	sort.Strings(m.deps)
	return m, nil
}

// makeAll matches a Makefile rule for the all target.
var makeAll = regexp.MustCompile(`(?m)^all\s*:([^=]|$)`)

func (d detector) cProgram() (*Program, string, error) {
	if d.has["go.mod"] || d.has["Cargo.toml"] {
		return nil, "", nil // cgo or build.rs sources: part of that program
	}
	cs := d.byExt[".c"]
	for _, mk := range []string{"GNUmakefile", "makefile", "Makefile"} {
		if !d.has[mk] {
			continue
		}
		dt, err := os.ReadFile(filepath.Join(d.dir, mk))
		if err != nil {
			return nil, "", fmt.Errorf("explore: %w", err)
		}
		if !makeAll.Match(dt) {
			if len(cs) > 0 {
				return nil, mk + " with no all target", nil
			}
			return nil, "", nil
		}
		if len(cs) == 0 {
			return nil, mk + " with an all target but no .c file", nil
		}
		p := &Program{Dir: d.dir, Kind: C, Makefile: mk, Name: programName(filepath.Base(d.dir)), Files: append([]string{mk}, cs...)}
		p.NeedsCA = d.grepC(cs, cNeedsCA)
		return p, "", nil
	}
	switch len(cs) {
	case 0:
		return nil, "", nil
	case 1:
	default:
		return nil, fmt.Sprintf("%d .c files (%s) and no Makefile with an all target", len(cs), strings.Join(cs, ", ")), nil
	}
	src := cs[0]
	p := &Program{Dir: d.dir, Kind: C, Source: src, Name: programName(strings.TrimSuffix(src, ".c"), filepath.Base(d.dir)), Files: []string{src}}
	dt, err := os.ReadFile(filepath.Join(d.dir, src))
	if err != nil {
		return nil, "", fmt.Errorf("explore: %w", err)
	}
	if cMath.Match(dt) {
		p.Libs = append(p.Libs, "-lm")
	}
	if cPthread.Match(dt) {
		p.Libs = append(p.Libs, "-pthread")
	}
	p.NeedsCA = cNeedsCA.Match(dt)
	return p, "", nil
}

var (
	cMath    = regexp.MustCompile(`(?m)^\s*#\s*include\s*<(math|complex|tgmath)\.h>`)
	cPthread = regexp.MustCompile(`(?m)^\s*#\s*include\s*<pthread\.h>`)
	cNeedsCA = regexp.MustCompile(`(?m)^\s*#\s*include\s*<(openssl|curl|gnutls|mbedtls)/`)
)

func (d detector) grepC(files []string, re *regexp.Regexp) bool {
	for _, f := range files {
		if dt, err := os.ReadFile(filepath.Join(d.dir, f)); err == nil && re.Match(dt) {
			return true
		}
	}
	return false
}

func (d detector) pythonScript() (*Program, string, error) {
	pys := d.byExt[".py"]
	switch len(pys) {
	case 0:
		return nil, "", nil
	case 1:
	default:
		return nil, fmt.Sprintf("%d .py files (%s): which is the script?", len(pys), strings.Join(pys, ", ")), nil
	}
	src := pys[0]
	p := &Program{Dir: d.dir, Kind: Python, Source: src, Name: programName(strings.TrimSuffix(src, ".py"), filepath.Base(d.dir)), Files: []string{src}}
	if d.has["requirements.txt"] {
		p.Requirements = "requirements.txt"
		p.Files = append(p.Files, p.Requirements)
	}
	return p, "", nil
}

var (
	javaMain  = regexp.MustCompile(`\bstatic\s+(public\s+)?void\s+main\s*\(|\bpublic\s+static\s+void\s+main\s*\(`)
	javaClass = regexp.MustCompile(`(?m)^\s*(public\s+)?(final\s+)?class\s+([A-Za-z_$][A-Za-z0-9_$]*)`)
	javaPkg   = regexp.MustCompile(`(?m)^\s*package\s+[A-Za-z_][\w.]*\s*;`)
)

func (d detector) javaProgram() (*Program, string, error) {
	js := d.byExt[".java"]
	switch len(js) {
	case 0:
		return nil, "", nil
	case 1:
	default:
		return nil, fmt.Sprintf("%d .java files: explore takes a single-file Java program", len(js)), nil
	}
	src := js[0]
	dt, err := os.ReadFile(filepath.Join(d.dir, src))
	if err != nil {
		return nil, "", fmt.Errorf("explore: %w", err)
	}
	if !javaMain.Match(dt) {
		return nil, src + " has no main method", nil
	}
	if javaPkg.Match(dt) {
		return nil, src + " declares a package: explore takes a single-file program in the default package", nil
	}
	class := strings.TrimSuffix(src, ".java")
	if m := javaClass.FindSubmatch(dt); m != nil && len(m[1]) > 0 {
		class = string(m[3]) // a public class names the file
	} else if m != nil {
		class = string(m[3])
	}
	return &Program{Dir: d.dir, Kind: Java, Source: src, Class: class, Name: programName(class, filepath.Base(d.dir)), Files: []string{src}}, "", nil
}
