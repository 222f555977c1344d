package diagnose

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// classMagic starts every Java class file.
const classMagic = 0xCAFEBABE

// classMajorOffset is what a Java release's feature number adds to make
// the newest class file major version it reads (Java 8 reads up to 52).
const classMajorOffset = 44

// ClassFileVersion is a class file's format version, as its header says.
type ClassFileVersion struct {
	Major, Minor uint16
}

// String is the version as Java writes it: "65.0".
func (v ClassFileVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Java is the Java release whose class files have this major version
// (65 is Java 21), 0 for the versions before Java 5.
func (v ClassFileVersion) Java() int {
	if v.Major < 49 {
		return 0
	}
	return int(v.Major) - classMajorOffset
}

// errNotClass is returned for a file that is not a Java class file.
var errNotClass = errors.New("not a Java class file")

// ReadClassVersion reads the version of the class file name in the image:
// the magic number 0xCAFEBABE, then the minor and major versions, big
// endian.
func ReadClassVersion(ctx context.Context, fsys FS, name string) (ClassFileVersion, error) {
	real, _, err := Resolve(ctx, fsys, name)
	if err != nil {
		return ClassFileVersion{}, err
	}
	head, err := fsys.ReadFile(ctx, real, 0, 8)
	if err != nil {
		return ClassFileVersion{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(head) < 8 || binary.BigEndian.Uint32(head) != classMagic {
		return ClassFileVersion{}, fmt.Errorf("%s: %w", name, errNotClass)
	}
	return ClassFileVersion{Minor: binary.BigEndian.Uint16(head[4:]), Major: binary.BigEndian.Uint16(head[6:])}, nil
}

// JavaRuntime is a Java runtime found in an image.
type JavaRuntime struct {
	Launcher string // the java executable, symlinks resolved
	Home     string // its Java home (the launcher's bin/ is in it)
	Version  string // its version string, "" if only the home's name tells
	// Source says where Version comes from: "release" (JAVA_VERSION in
	// the home's release file), "launcher" (the version compiled into
	// the java executable), or "path" (the home's name).
	Source  string
	Feature int // the Java release: 8 for 1.8.0_462, 21 for 21.0.5
}

// MaxClass is the newest class file version the runtime reads.
func (j JavaRuntime) MaxClass() ClassFileVersion {
	return ClassFileVersion{Major: uint16(j.Feature + classMajorOffset)}
}

var (
	releaseVersion = regexp.MustCompile(`(?m)^JAVA_VERSION="?([^"\s]+)"?`)
	// The launcher's version string, NUL-terminated in its data:
	// 1.8.0_504-8u504-ga-1-b01 (Java 8), 17.0.15+6-Debian-1deb12u1,
	// 21.0.5+11-LTS (a build number after "+" from Java 9 on).
	launcherVersion = regexp.MustCompile(`\x00(1\.[5-8]\.0_\d+[\x21-\x7e]*|\d{1,2}(?:\.\d+){0,4}\+\d+[\x21-\x7e]*)\x00`)
	// Java homes named after their release: java-8-openjdk-amd64,
	// java-21-amazon-corretto, jdk-17.0.2, jdk1.8.0_462.
	homeVersion = regexp.MustCompile(`(?:java-|jdk-?|jre-?)(1\.\d+|\d+)(?:[.\-_/]|$)`)
)

// maxLauncher bounds how much of a java executable is read for its
// version string: a launcher is small, and a wrong file is not read whole.
const maxLauncher = 4 << 20

// FindJavaRuntime finds the java launcher as the process would (in the
// PATH of env, relative names in cwd) and tells its release: from the
// release file of its Java home (JAVA_VERSION), else from the version
// string compiled into the launcher, else from the home's name.
func FindJavaRuntime(ctx context.Context, fsys FS, launcher string, env []string, cwd string) (JavaRuntime, error) {
	full, found := lookPath(ctx, fsys, launcher, env, cwd)
	if !found {
		return JavaRuntime{}, fmt.Errorf("%s not found in the image: %w", launcher, ErrNotExist)
	}
	real, _, err := Resolve(ctx, fsys, full)
	if err != nil {
		return JavaRuntime{}, err
	}
	j := JavaRuntime{Launcher: real, Home: path.Dir(path.Dir(real))}
	homes := []string{j.Home}
	if path.Base(j.Home) == "jre" { // Java 8's JRE inside its JDK
		homes = append(homes, path.Dir(j.Home))
	}
	for _, h := range homes {
		data, err := fsys.ReadFile(ctx, path.Join(h, "release"), 0, 64<<10)
		if err != nil {
			continue
		}
		if m := releaseVersion.FindSubmatch(data); m != nil {
			if f := javaFeature(string(m[1])); f > 0 {
				j.Version, j.Source, j.Feature = string(m[1]), "release", f
				return j, nil
			}
		}
	}
	if data, err := fsys.ReadFile(ctx, real, 0, maxLauncher); err == nil {
		if m := launcherVersion.FindSubmatch(data); m != nil {
			if f := javaFeature(string(m[1])); f > 0 {
				j.Version, j.Source, j.Feature = string(m[1]), "launcher", f
				return j, nil
			}
		}
	}
	if m := homeVersion.FindStringSubmatch(j.Home); m != nil {
		if f := javaFeature(m[1]); f > 0 {
			j.Source, j.Feature = "path", f
			return j, nil
		}
	}
	return j, fmt.Errorf("%s: no release file, launcher version or versioned Java home tells its Java version", real)
}

// javaFeature is the release of a Java version string: "1.8.0_462" is 8,
// "21.0.5" 21, "11" 11; 0 if it is none.
func javaFeature(v string) int {
	v = strings.TrimPrefix(v, "1.")
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		v = v[:end]
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// JavaLaunch is what a command line asks java to run.
type JavaLaunch struct {
	Launcher  string   // "java", "/opt/java/openjdk/bin/java", ...
	ClassPath []string // the class path entries
	MainClass string   // "hello", "com.example.Main"
}

// ParseJavaLaunch finds a java launch in a command line: args itself, or
// the command of a shell form (/bin/sh -c "exec java -cp . hello"). It
// knows -cp, -classpath and --class-path; the class path defaults to
// CLASSPATH in env, else the working directory. A -jar or --module
// launch is not a class launch: ok is false.
func ParseJavaLaunch(args, env []string) (JavaLaunch, bool) {
	if len(args) >= 3 && args[1] == "-c" && path.Base(args[0]) == "sh" {
		args = strings.Fields(args[2])
	}
	i := 0
	for i < len(args) && (args[i] == "exec" || strings.Contains(args[i], "=") && !strings.HasPrefix(args[i], "-")) {
		i++ // exec, VAR=value
	}
	if i >= len(args) || path.Base(args[i]) != "java" {
		return JavaLaunch{}, false
	}
	j := JavaLaunch{Launcher: args[i]}
	cp := ""
	for i++; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-cp" || a == "-classpath" || a == "--class-path":
			if i+1 >= len(args) {
				return JavaLaunch{}, false
			}
			i++
			cp = args[i]
		case strings.HasPrefix(a, "--class-path="):
			cp = strings.TrimPrefix(a, "--class-path=")
		case a == "-jar" || a == "-m" || a == "--module" || strings.HasPrefix(a, "--module="):
			return JavaLaunch{}, false
		case strings.HasPrefix(a, "-"):
			// another option, in one word (-Dx=y, -Xmx64m)
		default:
			j.MainClass = a
			i = len(args)
		}
	}
	if j.MainClass == "" || strings.HasSuffix(j.MainClass, ".java") {
		return JavaLaunch{}, false
	}
	if cp == "" {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "CLASSPATH="); ok {
				cp = v
			}
		}
	}
	if cp == "" {
		cp = "."
	}
	j.ClassPath = strings.Split(cp, ":")
	return j, true
}

// explainJava explains a java launch that failed from the class file it
// runs and the runtime that runs it. It returns false when the run is no
// class launch, or either cannot be read, or the class is not too new.
func explainJava(ctx context.Context, fsys FS, r Run) (Diagnosis, bool) {
	launch, ok := ParseJavaLaunch(r.Args, r.Env)
	if !ok {
		return Diagnosis{}, false
	}
	cwd := r.Cwd
	if cwd == "" {
		cwd = "/"
	}
	file := strings.ReplaceAll(launch.MainClass, ".", "/") + ".class"
	var class string
	var ver ClassFileVersion
	for _, dir := range launch.ClassPath {
		if dir == "" || strings.HasSuffix(dir, ".jar") || strings.HasSuffix(dir, "*") {
			continue
		}
		if !path.IsAbs(dir) {
			dir = path.Join(cwd, dir)
		}
		p := path.Join(dir, file)
		if v, err := ReadClassVersion(ctx, fsys, p); err == nil {
			class, ver = p, v
			break
		}
	}
	if class == "" {
		return Diagnosis{}, false
	}
	rt, err := FindJavaRuntime(ctx, fsys, launch.Launcher, r.Env, cwd)
	if err != nil || ver.Major <= rt.MaxClass().Major {
		return Diagnosis{}, false
	}
	runtime := rt.Home
	switch rt.Source {
	case "release":
		runtime += ", JAVA_VERSION " + rt.Version
	case "launcher":
		runtime += ", " + path.Base(rt.Launcher) + " " + rt.Version
	}
	compiled := "an old Java"
	if ver.Java() > 0 {
		compiled = "Java " + strconv.Itoa(ver.Java())
	}
	return Diagnosis{
		ExitCode: r.Code,
		Kind:     ClassVersion,
		Reason: fmt.Sprintf("class file version %s; this Java %d runtime accepts up to %s (%s was compiled for %s; the runtime is %s)",
			ver, rt.Feature, rt.MaxClass(), class, compiled, runtime),
	}, true
}
