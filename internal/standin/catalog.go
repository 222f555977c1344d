// Package standin builds offline stand-ins for the docker.io (and
// gcr.io/distroless) base images minikit's recipes start from, assembled
// from Debian packages, into an OCI image layout, and serves that layout
// from a loopback registry that buildkitd can use as its docker.io and
// gcr.io mirror.
//
// The stand-ins are not the real images: they have the same names, the same
// kind of userland (glibc or musl, compilers, interpreters) and the same
// Env/Cmd, which is what minikit's recipes rely on. Each image says what it
// was made from in its org.minikit.stand-in.from label.
package standin

import (
	"fmt"
	"slices"
	"strings"
)

// Labels every stand-in carries.
const (
	LabelStandIn = "org.minikit.stand-in"
	LabelFrom    = "org.minikit.stand-in.from"
	LabelVersion = "org.minikit.stand-in.version"
	// LabelPipIndex is the package index the python stand-ins' pip uses
	// (index-url in /etc/pip.conf): minikit's, on the stand-in registry.
	LabelPipIndex = "org.minikit.stand-in.pip-index"
	// LabelTestCA is the SHA-256 fingerprint of the test CA appended to
	// the image's CA bundle (see tlsca), on the stand-ins that install one.
	LabelTestCA = "org.minikit.stand-in.test-ca"

	// AnnotationRefName names an image in the OCI layout's index.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Debian is where every stand-in's packages come from: bookworm, unless a
// Spec names another suite (the Java images, from the suite that packages
// their Java version).
const (
	debianSuite  = "bookworm"
	debianMirror = "http://deb.debian.org/debian"
)

// Go toolchains of the golang stand-ins, as published on the Go module
// proxy: go126 for golang:1.26-*, go127 (the newest Go) for golang:1.27-*.
const (
	go126          = "1.26.8"
	go127          = "1.27.3"
	goToolchainMod = "golang.org/toolchain"
)

// goToolchainVersion is the module version of Go goVersion's toolchain
// zip for linux on arch on the module proxy
// ("v0.0.1-go1.26.8.linux-amd64").
func goToolchainVersion(goVersion, arch string) string {
	return "v0.0.1-go" + goVersion + ".linux-" + arch
}

const (
	debianPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	goPath     = "/go/bin:/usr/local/go/bin:" + debianPath
)

// recipe says how a stand-in's own layer is made.
type recipe int

const (
	// recipeDebootstrap: debootstrap --variant=minbase, one layer.
	recipeDebootstrap recipe = iota + 1
	// recipeAlias: the parent's layers unchanged, only the config differs.
	recipeAlias
	// recipeApt: apt-get install Packages in a chroot on the parent's rootfs.
	recipeApt
	// recipeGo: the Go toolchain from the module proxy at /usr/local/go.
	recipeGo
	// recipeDebs: Packages unpacked with dpkg-deb -x, plus a skeleton.
	recipeDebs
	// recipeDistroless: Packages unpacked with dpkg-deb -x as distroless
	// assembles its images: no shell, no package manager, a nonroot user.
	recipeDistroless
)

// Spec describes one stand-in image.
type Spec struct {
	// Name is the repository and tag as buildkitd asks the mirror for it:
	// the image's reference without its registry host, docker.io's
	// "library/gcc:12-bookworm" or gcr.io's "distroless/static-debian12:latest".
	Name string
	// Parent is the stand-in whose layers this one starts from ("" for a base).
	Parent string
	// Version is the recipe version, stored in the org.minikit.stand-in.version
	// label. Bump it when the recipe changes so existing images are rebuilt.
	Version string
	// From says what the image was made from (org.minikit.stand-in.from).
	From string
	// Packages are the Debian packages the recipe installs or unpacks.
	Packages []string
	// Suite is the Debian suite the packages come from ("" is
	// bookworm): the suite a debootstrap base bootstraps, and the one an
	// apt stand-in's parent was bootstrapped from (apt-get reads its
	// sources there). The dpkg-deb recipes unpack bookworm's packages.
	Suite string

	Env        []string
	Cmd        []string
	WorkingDir string

	recipe recipe
	// goVersion: the Go toolchain a recipeGo stand-in adds (go126, go127).
	goVersion string
	// alpine: applet links also at busybox's full paths, and an Alpine-like os-release.
	alpine bool
	// links are symbolic links (path -> target) recipeApt makes after
	// installing Packages, e.g. a Java home at the upstream image's path.
	links map[string]string
	// pip: pip installs into the system Python (no EXTERNALLY-MANAGED
	// marker, as in the official python images) from minikit's package
	// index, named in /etc/pip.conf and in the LabelPipIndex label.
	pip bool
	// arm64: the stand-in is also built for linux/arm64 when asked
	// (Platforms), from Debian's arm64 packages and Go's arm64 toolchain.
	arm64 bool
}

// Platforms lists the platforms the stand-in can be built for:
// LinuxAMD64, then LinuxARM64 for those a linux/arm64 recipe needs.
func (s Spec) Platforms() []Platform {
	if s.arm64 {
		return []Platform{LinuxAMD64, LinuxARM64}
	}
	return []Platform{LinuxAMD64}
}

// builds says whether the stand-in can be built for p.
func (s Spec) builds(p Platform) bool { return containsPlatform(s.Platforms(), p) }

// fromLabel is the org.minikit.stand-in.from label of the stand-in's
// image for p: From, which names the linux/amd64 artefacts, with the
// toolchain zip of p's architecture and p's packages.
func (s Spec) fromLabel(p Platform) string {
	if p == LinuxAMD64 {
		return s.From
	}
	return strings.ReplaceAll(s.From, ".linux-amd64", ".linux-"+p.Arch()) + " [" + p.String() + ": Debian's " + p.Arch() + " packages]"
}

// suite is the Debian suite of the stand-in's packages.
func (s Spec) suite() string {
	if s.Suite == "" {
		return debianSuite
	}
	return s.Suite
}

// hasCABundle says whether the stand-in's own layer makes a CA bundle
// (it installs ca-certificates): the test CA is appended to it.
func (s Spec) hasCABundle() bool {
	for _, p := range s.Packages {
		if p == "ca-certificates" {
			return true
		}
	}
	return false
}

// Repository returns the name without its tag ("library/gcc").
func (s Spec) Repository() string {
	repo, _, _ := strings.Cut(s.Name, ":")
	return repo
}

// Tag returns the name's tag ("12-bookworm").
func (s Spec) Tag() string {
	_, tag, _ := strings.Cut(s.Name, ":")
	return tag
}

// Catalog lists every stand-in, parents before the images derived from them.
// It returns a fresh slice on each call.
func Catalog() []Spec {
	debianEnv := []string{"PATH=" + debianPath}
	goEnv := func(goVersion string) []string {
		return []string{
			"PATH=" + goPath,
			"GOLANG_VERSION=" + goVersion,
			"GOPATH=/go",
			"GOTOOLCHAIN=local",
		}
	}
	goFrom := func(goVersion string) string {
		return fmt.Sprintf("Go %s at /usr/local/go from the Go module proxy zip %s@%s", goVersion, goToolchainMod, goToolchainVersion(goVersion, "amd64"))
	}
	// golangBookworm is the golang:X.Y-bookworm stand-in of Go goVersion:
	// the gcc stand-in + that toolchain.
	golangBookworm := func(name, goVersion string) Spec {
		return Spec{
			Name:       name,
			Parent:     "library/gcc:12-bookworm",
			Version:    "2",
			From:       "library/gcc:12-bookworm stand-in (debootstrap bookworm minbase + apt-get install gcc libc6-dev ca-certificates) + " + goFrom(goVersion),
			Env:        goEnv(goVersion),
			Cmd:        []string{"bash"},
			WorkingDir: "/go",
			recipe:     recipeGo,
			goVersion:  goVersion,
			arm64:      goVersion == go126,
		}
	}
	return append([]Spec{
		{
			Name:    "library/debian:bookworm",
			Version: "1",
			From:    debootstrapFrom(debianSuite),
			Env:     debianEnv,
			Cmd:     []string{"bash"},
			recipe:  recipeDebootstrap,
			arm64:   true,
		},
		{
			Name:    "library/ubuntu:24.04",
			Parent:  "library/debian:bookworm",
			Version: "1",
			From:    "Debian stands in for Ubuntu: the layer of the library/debian:bookworm stand-in (debootstrap --variant=minbase bookworm), not Ubuntu 24.04",
			Env:     debianEnv,
			Cmd:     []string{"/bin/bash"},
			recipe:  recipeAlias,
			arm64:   true,
		},
		// debian:bookworm-slim (minikit explore's debian-slim run base): the minbase debian stand-in is as slim.
		{Name: "library/debian:bookworm-slim", Parent: "library/debian:bookworm", Version: "1", From: "the layer of the library/debian:bookworm stand-in (debootstrap --variant=minbase bookworm), which is as slim as debian:bookworm-slim", Env: debianEnv, Cmd: []string{"bash"}, recipe: recipeAlias},
		{
			Name:     "library/gcc:12-bookworm",
			Parent:   "library/debian:bookworm",
			Version:  "2",
			From:     "library/debian:bookworm stand-in (debootstrap bookworm minbase) + apt-get install --no-install-recommends gcc libc6-dev ca-certificates; minikit's test CA appended to the CA bundle",
			Packages: []string{"gcc", "libc6-dev", "ca-certificates"},
			Env:      debianEnv,
			Cmd:      []string{"bash"},
			recipe:   recipeApt,
			arm64:    true,
		},
		golangBookworm("library/golang:1.26-bookworm", go126),
		golangBookworm("library/golang:1.27-bookworm", go127),
		{
			Name:     "library/alpine:3.22",
			Version:  "2",
			From:     "Debian bookworm .debs unpacked with dpkg-deb -x: busybox-static 1.35 (applet links) + musl + ca-certificates bundle (with minikit's test CA appended); not Alpine (no apk)",
			Packages: []string{"busybox-static", "musl", "ca-certificates"},
			Env:      debianEnv,
			Cmd:      []string{"/bin/sh"},
			recipe:   recipeDebs,
			arm64:    true,
			alpine:   true,
		},
		{
			Name:       "library/golang:1.26-alpine3.22",
			Parent:     "library/alpine:3.22",
			Version:    "2",
			From:       "library/alpine:3.22 stand-in (Debian busybox-static + musl + ca-certificates) + " + goFrom(go126) + "; no C compiler",
			Env:        goEnv(go126),
			Cmd:        []string{"/bin/sh"},
			WorkingDir: "/go",
			recipe:     recipeGo,
			arm64:      true,
			goVersion:  go126,
		},
		{
			Name:     "library/busybox:1.37",
			Version:  "1",
			From:     "Debian bookworm busybox-static 1.35 unpacked with dpkg-deb -x + applet links in /bin; no C library",
			Packages: []string{"busybox-static"},
			Env:      debianEnv,
			Cmd:      []string{"sh"},
			recipe:   recipeDebs,
			arm64:    true,
		},
		{
			Name:     "library/busybox:1.37-glibc",
			Version:  "1",
			From:     "Debian bookworm busybox-static 1.35 + libc6 (glibc runtime only, no libgcc_s) unpacked with dpkg-deb -x + applet links in /bin",
			Packages: []string{"busybox-static", "libc6"},
			Env:      debianEnv,
			Cmd:      []string{"sh"},
			recipe:   recipeDebs,
			arm64:    true,
		},
		{
			Name:     "library/rust:1.91-bookworm",
			Parent:   "library/debian:bookworm",
			Version:  "1",
			From:     "library/debian:bookworm stand-in (debootstrap bookworm minbase) + apt-get install --no-install-recommends rustc gcc libc6-dev (Debian's rustc 1.63, no cargo, no rustup)",
			Packages: []string{"rustc", "gcc", "libc6-dev"},
			Env:      debianEnv,
			Cmd:      []string{"bash"},
			recipe:   recipeApt,
		},
		pythonSlimSpec(debianEnv),
		pythonFullSpec(debianEnv),
	}, append(distrolessCatalog(), javaCatalog()...)...)
}

// distrolessCatalog lists the distroless-style run images, assembled from
// Debian packages the way gcr.io/distroless assembles its images, under
// the upstream names (the registry is buildkitd's mirror for gcr.io too:
// gcr.io/distroless/static-debian12:latest is asked for as
// distroless/static-debian12:latest). They have no shell and no CMD.
// java-base and python3 are smaller than their upstream namesakes: each
// carries what its recipe's program needs, no more.
func distrolessCatalog() []Spec {
	static := []string{"base-files", "netbase", "tzdata", "media-types", "ca-certificates"}
	base := append(slices.Clip(static), "libc6", "libssl3")
	cc := append(slices.Clip(base), "libgcc-s1", "libstdc++6")
	// python3.11's own dependencies (libpython3.11-minimal's libssl3 is in base).
	pythonMinimal := []string{"zlib1g", "libexpat1", "libpython3.11-minimal", "python3.11-minimal", "python3-minimal"}
	from := func(what string) string {
		return "like gcr.io/distroless/" + what + ": Debian bookworm .debs unpacked with dpkg-deb -x: "
	}
	return []Spec{
		{
			Name:     "distroless/static-debian12:latest",
			Version:  "1",
			From:     from("static-debian12") + strings.Join(static, " ") + " (CA bundle with minikit's test CA appended); root, nobody and nonroot (65532) users; no libc, no shell",
			Packages: static,
			Env:      distrolessEnv(),
			recipe:   recipeDistroless,
			arm64:    true,
		},
		{
			Name:     "distroless/base-debian12:latest",
			Version:  "1",
			From:     from("base-debian12") + "the static set + libc6 libssl3 (glibc, OpenSSL); no libgcc_s, no shell",
			Packages: base,
			Env:      distrolessEnv(),
			recipe:   recipeDistroless,
			arm64:    true,
		},
		{
			Name:     "distroless/cc-debian12:latest",
			Version:  "1",
			From:     from("cc-debian12") + "the base set + libgcc-s1 libstdc++6; no shell",
			Packages: cc,
			Env:      distrolessEnv(),
			recipe:   recipeDistroless,
			arm64:    true,
		},
		{
			// A runtime made by Debian's jlink needs libz.so.1 (the java
			// launcher, libjli, libzip) besides glibc, libstdc++ and
			// libgcc_s (libjvm): cc has no zlib.
			Name:     "distroless/java-base-debian12:latest",
			Version:  "1",
			From:     from("java-base-debian12") + "the cc set + zlib1g, what a headless Java runtime made by jlink links to; no fonts, no JRE, no shell",
			Packages: append(slices.Clip(cc), "zlib1g"),
			Env:      distrolessEnv(),
			recipe:   recipeDistroless,
		},
		{
			// Debian's minimal Python: the interpreter and the modules it
			// needs to start, not the full standard library that
			// gcr.io/distroless/python3-debian12 carries.
			Name:     "distroless/python3-debian12:latest",
			Version:  "1",
			From:     from("python3-debian12") + "the base set + " + strings.Join(pythonMinimal, " ") + " (Debian's minimal Python 3.11, not the full standard library); no shell",
			Packages: append(slices.Clip(base), pythonMinimal...),
			Env:      []string{"PATH=" + debianPath, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "LANG=C.UTF-8"},
			recipe:   recipeDistroless,
		},
	}
}

// javaCatalog lists the Java images: Debian's OpenJDK of each major
// version a recipe pins, from the suite that packages it. Each suite is
// bootstrapped once (bookworm's is library/debian:bookworm) and a JDK is
// its JRE stand-in plus the JDK package, so they share layers. The
// eclipse-temurin ones link /opt/java/openjdk, Temurin's JAVA_HOME, to
// Debian's Java home.
func javaCatalog() []Spec {
	debian := func(suite string) Spec {
		return Spec{
			Name:    "library/debian:" + suite,
			Suite:   suite,
			Version: "1",
			From:    debootstrapFrom(suite),
			Env:     []string{"PATH=" + debianPath},
			Cmd:     []string{"bash"},
			recipe:  recipeDebootstrap,
		}
	}
	// temurin is eclipse-temurin:TAG: apt-get install pkgs on parent, with
	// /opt/java/openjdk linking to home.
	temurin := func(tag, parent, suite, home string, pkgs []string, cmd ...string) Spec {
		return Spec{
			Name:     "library/eclipse-temurin:" + tag,
			Parent:   parent,
			Suite:    suite,
			Version:  "1",
			From:     fmt.Sprintf("%s stand-in + apt-get install --no-install-recommends %s (Debian %s's OpenJDK, not an Eclipse Temurin build); /opt/java/openjdk links to %s", parent, strings.Join(pkgs, " "), suite, home),
			Packages: pkgs,
			Env:      []string{"JAVA_HOME=" + temurinHome, "PATH=" + temurinHome + "/bin:" + debianPath, "LANG=C.UTF-8"},
			Cmd:      cmd,
			recipe:   recipeApt,
			links:    map[string]string{temurinHome: home},
		}
	}
	jvm := func(major string) string { return "/usr/lib/jvm/java-" + major + "-openjdk-amd64" }
	jre := func(major string) []string { return []string{"openjdk-" + major + "-jre-headless"} }
	// Temurin's JDK images have binutils: jlink --strip-debug runs objcopy.
	jdk := func(major string) []string { return []string{"openjdk-" + major + "-jdk-headless", "binutils"} }
	jre8 := temurin("8-jre-alpine", "library/debian:sid", "sid", jvm("8")+"/jre", jre("8"), "/bin/sh")
	jre8.From = "glibc, not musl, and not Alpine: " + jre8.From
	corretto := Spec{
		Name:    "library/amazoncorretto:21",
		Parent:  "library/eclipse-temurin:21-jdk",
		Suite:   "trixie",
		Version: "1",
		From:    "the layers of the library/eclipse-temurin:21-jdk stand-in (Debian trixie's OpenJDK 21 JDK), not Amazon Corretto 21 on Amazon Linux; JAVA_HOME is Debian's Java home",
		Env:     []string{"LANG=C.UTF-8", "JAVA_HOME=" + jvm("21"), "PATH=" + debianPath},
		Cmd:     []string{"/bin/bash"},
		recipe:  recipeAlias,
	}
	return []Spec{
		debian("sid"),
		jre8,
		temurin("8-jdk", "library/eclipse-temurin:8-jre-alpine", "sid", jvm("8"), jdk("8"), "/bin/bash"),
		debian("bullseye"),
		temurin("11-jre", "library/debian:bullseye", "bullseye", jvm("11"), jre("11"), "/bin/bash"),
		temurin("11-jdk", "library/eclipse-temurin:11-jre", "bullseye", jvm("11"), jdk("11"), "jshell"),
		// bookworm's openjdk-17-jdk-headless ships the jmods jlink needs.
		temurin("17-jdk", "library/debian:bookworm", "bookworm", jvm("17"), jdk("17"), "jshell"),
		debian("trixie"),
		temurin("21-jre", "library/debian:trixie", "trixie", jvm("21"), jre("21"), "/bin/bash"),
		temurin("21-jdk", "library/eclipse-temurin:21-jre", "trixie", jvm("21"), jdk("21"), "jshell"),
		corretto,
	}
}

// temurinHome is JAVA_HOME in the eclipse-temurin images.
const temurinHome = "/opt/java/openjdk"

// debootstrapFrom is the From label of a debootstrap base of suite.
func debootstrapFrom(suite string) string {
	return "debootstrap --variant=minbase " + suite + " " + debianMirror + " (downloaded .debs and apt lists removed)"
}

// normalizeName accepts "gcc:12-bookworm", "library/gcc:12-bookworm",
// "docker.io/library/gcc:12-bookworm" and
// "gcr.io/distroless/static-debian12:latest" and returns the catalog form,
// the path buildkitd asks the mirror for.
func normalizeName(n string) string {
	n = strings.TrimSpace(n)
	n = strings.TrimPrefix(n, "docker.io/")
	n = strings.TrimPrefix(n, "index.docker.io/")
	n = strings.TrimPrefix(n, "gcr.io/")
	if n != "" && !strings.Contains(n, "/") {
		n = "library/" + n
	}
	return n
}

// lookup indexes specs by name.
func lookup(specs []Spec) map[string]Spec {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}

// closure returns the specs named (all when names is empty) plus their
// ancestors, in catalog order (parents first).
func closure(specs []Spec, names []string) ([]Spec, error) {
	byName := lookup(specs)
	want := map[string]bool{}
	if len(names) == 0 {
		for _, s := range specs {
			want[s.Name] = true
		}
	}
	for _, n := range names {
		nn := normalizeName(n)
		s, ok := byName[nn]
		if !ok {
			known := make([]string, 0, len(specs))
			for _, s := range specs {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("unknown stand-in %q (known: %s)", n, strings.Join(known, ", "))
		}
		for {
			want[s.Name] = true
			if s.Parent == "" {
				break
			}
			p, ok := byName[s.Parent]
			if !ok {
				return nil, fmt.Errorf("stand-in %s: parent %s not in catalog", s.Name, s.Parent)
			}
			s = p
		}
	}
	var out []Spec
	for _, s := range specs {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// distrolessEnv is the environment of every distroless-style stand-in, a
// fresh slice each time.
func distrolessEnv() []string {
	return []string{"PATH=" + debianPath, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
}
