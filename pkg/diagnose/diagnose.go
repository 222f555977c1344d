// Package diagnose explains how a container's process ended, the way a
// person would: from the process's exit code and error output, and from
// the image's files (the executable's ELF loader and libraries, /bin/sh,
// the CA bundle), never from what the image is called. It maps a
// runtime's exit codes to Docker's: 127 when the executable, its loader
// or /bin/sh cannot be found, 126 when it cannot be executed.
//
// It needs no daemon: the image is read through the FS interface.
package diagnose

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is a class of outcome, stable for scripts and tests.
type Kind string

const (
	OK             Kind = "ok"              // exit code 0
	Exited         Kind = "exit"            // a non-zero exit, cause not recognized
	NoCommand      Kind = "no-command"      // the image has no Cmd or Entrypoint
	Timeout        Kind = "timeout"         // killed at the time limit
	NotFound       Kind = "not-found"       // the executable is not in the image
	NotExecutable  Kind = "not-executable"  // it is, but cannot be executed
	NoShell        Kind = "no-shell"        // a shell-form command, no /bin/sh
	MissingLoader  Kind = "missing-loader"  // dynamic binary, no ELF interpreter
	MissingLibrary Kind = "missing-library" // the loader cannot find a library
	MissingInterp  Kind = "missing-interpreter"
	ExecFormat     Kind = "exec-format" // not a binary for this machine
	UnknownCA      Kind = "x509-unknown-authority"
	ClassVersion   Kind = "class-version" // Java class file too new
	Network        Kind = "network"       // cannot reach the server
)

// Run is what happened when a process was started.
type Run struct {
	// Args is the command line run: the image's Entrypoint then Cmd.
	Args []string
	Env  []string // as given to the process (PATH is looked up in it)
	Cwd  string
	// Code is the exit code the runtime reported (BuildKit reports an
	// executable that cannot be started as 1, with runc's message).
	Code int
	// Stderr is the tail of the process's error output; Message the
	// runtime's own error message, if any.
	Stderr, Message string
	// TimedOut is set when the process was killed at Limit.
	TimedOut bool
	Limit    time.Duration
}

// Diagnosis is the explanation of a Run.
type Diagnosis struct {
	// ExitCode is Docker's exit code for the run: the process's own, or
	// 127/126 when it could not be started; -1 when no process ended by
	// itself (nothing to run, timeout).
	ExitCode int
	Kind     Kind
	Reason   string // one line, for a person
}

// Explain diagnoses a run of an image whose files fsys reads.
func Explain(ctx context.Context, fsys FS, r Run) Diagnosis {
	switch {
	case len(r.Args) == 0:
		return Diagnosis{ExitCode: -1, Kind: NoCommand, Reason: "nothing to run: the image has no Cmd and no Entrypoint"}
	case r.TimedOut:
		return Diagnosis{ExitCode: -1, Kind: Timeout, Reason: fmt.Sprintf("timeout: still running after %s, killed", r.Limit)}
	case r.Code == 0:
		return Diagnosis{ExitCode: 0, Kind: OK, Reason: "ok"}
	}
	text := r.Stderr + "\n" + r.Message
	if ef, ok := ParseExecFailure(text); ok {
		return explainExec(ctx, fsys, r, ef)
	}
	if m := emulatedLoader.FindStringSubmatch(text); m != nil {
		if d, ok := explainEmulatedLoader(ctx, fsys, r, m[1]); ok {
			return d
		}
	}
	d := Classify(text)
	if d.Kind == "" || d.Kind == ClassVersion {
		// The class file and the runtime say it, whatever stderr says.
		if jd, ok := explainJava(ctx, fsys, r); ok {
			return jd
		}
	}
	if d.Kind == "" {
		d = Diagnosis{Kind: Exited, Reason: fmt.Sprintf("exited with code %d", r.Code)}
		if l := lastLine(r.Stderr); l != "" {
			d.Reason += ": " + l
		}
	}
	d.ExitCode = r.Code
	switch d.Kind {
	case MissingLibrary:
		d.Reason = explainLibraries(ctx, fsys, r, d.Reason)
	case UnknownCA:
		if bundle := CABundle(ctx, fsys); bundle == "" {
			d.Reason += ": no CA bundle in the image"
		} else {
			d.Reason += ": the image's CA bundle (" + bundle + ") does not hold the server's CA"
		}
	}
	return d
}

// ExecFailure is a runtime's report that it could not execute a program.
type ExecFailure struct {
	Path  string // the program, as the runtime named it
	Errno string // "no such file or directory", "permission denied", ...
}

// runc's messages, as BuildKit and Docker relay them:
//
//	exec: "./hello": stat ./hello: no such file or directory
//	exec: "hello": executable file not found in $PATH
//	exec: "/noexec": permission denied
//	exec /hello: no such file or directory   (found, but its loader is not)
//	exec /x: exec format error
var (
	execQuoted = regexp.MustCompile(`exec: "([^"]*)": (?:stat [^:]*: )?(no such file or directory|executable file not found in \$PATH|permission denied|exec format error|is a directory|not a directory)`)
	execBare   = regexp.MustCompile(`(?m)(?:^|[^\w])exec (/\S*|\./\S*): (no such file or directory|permission denied|exec format error|is a directory|not a directory)`)
)

// ParseExecFailure finds a runtime's exec failure in text.
func ParseExecFailure(text string) (ExecFailure, bool) {
	if m := execQuoted.FindStringSubmatch(text); m != nil {
		return ExecFailure{Path: m[1], Errno: m[2]}, true
	}
	if m := execBare.FindStringSubmatch(text); m != nil {
		return ExecFailure{Path: m[1], Errno: m[2]}, true
	}
	return ExecFailure{}, false
}

// explainExec explains a process that could not be started, from the
// image's files.
func explainExec(ctx context.Context, fsys FS, r Run, ef ExecFailure) Diagnosis {
	prog := r.Args[0]
	shellForm := len(r.Args) >= 3 && r.Args[1] == "-c" && (prog == "/bin/sh" || prog == "sh")
	full, found := lookPath(ctx, fsys, prog, r.Env, r.Cwd)
	switch {
	case !found && shellForm:
		return Diagnosis{ExitCode: 127, Kind: NoShell, Reason: fmt.Sprintf("shell-form CMD (%s) but no /bin/sh in the image", r.Args[2])}
	case !found:
		return Diagnosis{ExitCode: 127, Kind: NotFound, Reason: fmt.Sprintf("%s not found in the image", prog)}
	}
	_, st, err := Resolve(ctx, fsys, full)
	if err == nil && (st.Mode.IsDir() || st.Mode&0o111 == 0) {
		what := "not executable (mode " + st.Mode.Perm().String() + ")"
		if st.Mode.IsDir() {
			what = "a directory"
		}
		return Diagnosis{ExitCode: 126, Kind: NotExecutable, Reason: fmt.Sprintf("%s is %s", full, what)}
	}
	bin, isELF, err := InspectELF(ctx, fsys, full)
	switch {
	case err != nil:
		// Could not read it: fall back on what the runtime said.
	case isELF && ef.Errno == "exec format error":
		// The kernel knows no such binaries: it never looked for a loader.
		if a, ok := bin.Arch(); ok {
			return Diagnosis{ExitCode: 126, Kind: ExecFormat, Reason: fmt.Sprintf("%s is a program for %s (%s), not for this machine, and no emulator is registered for it (exec format error)", full, a.Name, a.Platform)}
		}
	case isELF && bin.Interp != "" && !exists(ctx, fsys, bin.Interp):
		return Diagnosis{ExitCode: 127, Kind: MissingLoader, Reason: fmt.Sprintf("dynamic binary, but the image has no %s (%s)", bin.Interp, LoaderKind(bin.Interp))}
	case !isELF:
		if interp := shebang(ctx, fsys, full); interp != "" && !exists(ctx, fsys, interp) {
			return Diagnosis{ExitCode: 127, Kind: MissingInterp, Reason: fmt.Sprintf("%s is a script for %s, which is not in the image", full, interp)}
		}
	}
	switch ef.Errno {
	case "permission denied", "is a directory":
		return Diagnosis{ExitCode: 126, Kind: NotExecutable, Reason: fmt.Sprintf("%s cannot be executed: %s", full, ef.Errno)}
	case "exec format error":
		return Diagnosis{ExitCode: 126, Kind: ExecFormat, Reason: fmt.Sprintf("%s is not a program for this machine (exec format error)", full)}
	}
	return Diagnosis{ExitCode: 127, Kind: NotFound, Reason: fmt.Sprintf("%s cannot be started: %s", full, ef.Errno)}
}

// emulatedLoader is qemu-user's message when the ELF interpreter of the
// program it emulates is not there (binfmt_misc ran qemu, so the
// kernel's exec succeeded and the process exits 255):
//
//	aarch64-binfmt-P: Could not open '/lib/ld-linux-aarch64.so.1': No such file or directory
var emulatedLoader = regexp.MustCompile(`Could not open '([^']+)': No such file or directory`)

// explainEmulatedLoader explains qemu-user's "Could not open LOADER" as
// the kernel would have, natively: exit 127, the loader missing. ok is
// false when the program is no ELF binary whose interpreter is loader.
func explainEmulatedLoader(ctx context.Context, fsys FS, r Run, loader string) (Diagnosis, bool) {
	full, found := lookPath(ctx, fsys, r.Args[0], r.Env, r.Cwd)
	if !found {
		return Diagnosis{}, false
	}
	bin, isELF, err := InspectELF(ctx, fsys, full)
	if err != nil || !isELF || bin.Interp != loader || exists(ctx, fsys, loader) {
		return Diagnosis{}, false
	}
	reason := fmt.Sprintf("dynamic binary, but the image has no %s (%s)", bin.Interp, LoaderKind(bin.Interp))
	if a, ok := bin.Arch(); ok {
		reason += ", run emulated as " + a.Name
	}
	return Diagnosis{ExitCode: 127, Kind: MissingLoader, Reason: reason}, true
}

// lookPath finds prog in the image as execve in the container would:
// a name with a slash relative to cwd, else in the PATH of env.
func lookPath(ctx context.Context, fsys FS, prog string, env []string, cwd string) (string, bool) {
	if cwd == "" {
		cwd = "/"
	}
	if strings.Contains(prog, "/") {
		p := prog
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		return p, exists(ctx, fsys, p)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = cwd
		}
		if p := path.Join(dir, prog); exists(ctx, fsys, p) {
			return p, true
		}
	}
	return prog, false
}

// shebang returns a script's interpreter ("" if it has none).
func shebang(ctx context.Context, fsys FS, name string) string {
	real, _, err := Resolve(ctx, fsys, name)
	if err != nil {
		return ""
	}
	head, err := fsys.ReadFile(ctx, real, 0, 256)
	if err != nil || !strings.HasPrefix(string(head), "#!") {
		return ""
	}
	line, _, _ := strings.Cut(string(head[2:]), "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// explainLibraries adds, to the loader's message about the first missing
// library, every other library the binary needs that the image lacks.
func explainLibraries(ctx context.Context, fsys FS, r Run, reason string) string {
	full, found := lookPath(ctx, fsys, r.Args[0], r.Env, r.Cwd)
	if !found {
		return reason
	}
	bin, isELF, err := InspectELF(ctx, fsys, full)
	if err != nil || !isELF {
		return reason
	}
	missing := MissingLibraries(ctx, fsys, bin)
	if len(missing) == 0 {
		return reason
	}
	return fmt.Sprintf("%s (the image lacks: %s, needed by %s)", reason, strings.Join(missing, ", "), full)
}

// CABundle returns the path of the CA bundle in the image that Go's and
// OpenSSL's default lookups would use, or "".
func CABundle(ctx context.Context, fsys FS) string {
	for _, f := range []string{
		"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
		"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
		"/etc/ssl/ca-bundle.pem",             // openSUSE
		"/etc/pki/tls/cacert.pem",            // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem", // Alpine, macOS
	} {
		if _, st, err := Resolve(ctx, fsys, f); err == nil && st.Mode.IsRegular() && st.Size > 0 {
			return f
		}
	}
	return ""
}

// Patterns of error output, most specific first.
var (
	glibcLib   = regexp.MustCompile(`error while loading shared libraries: ([^:\s]+): cannot open shared object file`)
	muslLib    = regexp.MustCompile(`Error loading shared library ([^:\s]+): No such file or directory`)
	classVers  = regexp.MustCompile(`UnsupportedClassVersionError:.*class file version (\d+)(?:\.\d+)?\)?,? this version of the Java Runtime only recognizes class file versions up to (\d+)`)
	classVers2 = regexp.MustCompile(`UnsupportedClassVersionError`)
	x509CA     = regexp.MustCompile(`x509: certificate signed by unknown authority`)
	netErr     = regexp.MustCompile(`(network is unreachable|no such host|connection refused|i/o timeout|Temporary failure in name resolution|server misbehaving)`)
	shNotFound = regexp.MustCompile(`(?m)^(?:/bin/)?sh: (?:\d+: )?([^:\s]+): (?:not found|No such file or directory)`)
)

// Classify recognizes a failure from a process's error output. The
// Diagnosis has no ExitCode; Kind is "" when nothing is recognized.
func Classify(stderr string) Diagnosis {
	if m := glibcLib.FindStringSubmatch(stderr); m != nil {
		return Diagnosis{Kind: MissingLibrary, Reason: "shared library " + m[1] + " missing"}
	}
	if m := muslLib.FindStringSubmatch(stderr); m != nil {
		return Diagnosis{Kind: MissingLibrary, Reason: "shared library " + m[1] + " missing"}
	}
	if m := classVers.FindStringSubmatch(stderr); m != nil {
		return Diagnosis{Kind: ClassVersion, Reason: fmt.Sprintf("class file version %s is newer than this Java runtime (it reads up to %s, %s)", m[1], m[2], javaName(m[2]))}
	}
	if classVers2.MatchString(stderr) {
		return Diagnosis{Kind: ClassVersion, Reason: "class file version is newer than this Java runtime"}
	}
	if x509CA.MatchString(stderr) {
		return Diagnosis{Kind: UnknownCA, Reason: "x509: certificate signed by unknown authority"}
	}
	if m := netErr.FindStringSubmatch(stderr); m != nil {
		return Diagnosis{Kind: Network, Reason: "network unreachable: " + m[1]}
	}
	if m := shNotFound.FindStringSubmatch(stderr); m != nil {
		return Diagnosis{Kind: NotFound, Reason: "the shell cannot find " + m[1]}
	}
	return Diagnosis{}
}

// javaName turns a class file major version into a Java release.
func javaName(major string) string {
	n, err := strconv.Atoi(major)
	if err != nil || n < 49 {
		return "an old Java"
	}
	return "Java " + strconv.Itoa(n-44) // 52 is Java 8, 65 Java 21
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:197] + "..."
	}
	return l
}
