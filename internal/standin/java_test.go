package standin

import (
	"slices"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// Each Java image a recipe pins has a stand-in from the Debian suite that
// packages its major version; a JDK's layers hold a JDK package, a JRE's
// none (no javac), and JAVA_HOME is set as upstream sets it.
func TestJavaStandIns(t *testing.T) {
	cases := []struct {
		image, suite, major string
		jdk                 bool
		javaHome            string
	}{
		{llbdefs.JDK8, "sid", "8", true, temurinHome},
		{llbdefs.JRE8Alpine, "sid", "8", false, temurinHome},
		{llbdefs.JDK11, "bullseye", "11", true, temurinHome},
		{llbdefs.JRE11, "bullseye", "11", false, temurinHome},
		{llbdefs.JDK17, "bookworm", "17", true, temurinHome},
		{llbdefs.JDK, "trixie", "21", true, temurinHome},
		{llbdefs.JRE, "trixie", "21", false, temurinHome},
		{llbdefs.Corretto, "trixie", "21", true, "/usr/lib/jvm/java-21-openjdk-amd64"},
	}
	specs := Catalog()
	byName := lookup(specs)
	for _, c := range cases {
		t.Run(c.image, func(t *testing.T) {
			s, ok := byName[normalizeName(c.image)]
			if !ok {
				t.Fatalf("no stand-in for %s", c.image)
			}
			if s.Suite != c.suite {
				t.Errorf("suite %q, want %q", s.Suite, c.suite)
			}
			chain, err := closure(specs, []string{s.Name})
			if err != nil {
				t.Fatal(err)
			}
			var pkgs []string
			for _, p := range chain {
				if p.suite() != c.suite {
					t.Errorf("%s in its layers is from %s, not %s", p.Name, p.suite(), c.suite)
				}
				pkgs = append(pkgs, p.Packages...)
			}
			if chain[0].recipe != recipeDebootstrap {
				t.Errorf("its base %s is no debootstrap of %s", chain[0].Name, c.suite)
			}
			jre := "openjdk-" + c.major + "-jre-headless"
			jdk := "openjdk-" + c.major + "-jdk-headless"
			// binutils: jlink --strip-debug runs objcopy.
			if c.jdk && (!slices.Contains(pkgs, jdk) || !slices.Contains(pkgs, "binutils")) {
				t.Errorf("packages %v, want %s and binutils", pkgs, jdk)
			}
			if !c.jdk && !slices.Equal(pkgs, []string{jre}) {
				t.Errorf("packages %v, want only %s (no javac)", pkgs, jre)
			}
			for _, p := range pkgs {
				if !strings.HasPrefix(p, "openjdk-"+c.major+"-") && p != "binutils" {
					t.Errorf("package %s is not Java %s", p, c.major)
				}
			}
			if got := envValue(s.Env, "JAVA_HOME"); got != c.javaHome {
				t.Errorf("JAVA_HOME %q, want %q", got, c.javaHome)
			}
			if c.javaHome == temurinHome {
				if !strings.HasPrefix(envValue(s.Env, "PATH"), temurinHome+"/bin:") {
					t.Errorf("PATH %q does not start with $JAVA_HOME/bin", envValue(s.Env, "PATH"))
				}
				target := s.links[temurinHome]
				if !strings.HasPrefix(target, "/usr/lib/jvm/java-"+c.major+"-openjdk-amd64") {
					t.Errorf("%s links to %q, not Debian's Java %s home", temurinHome, target, c.major)
				}
			}
			if !strings.Contains(s.From, c.suite) || !strings.Contains(s.From, "OpenJDK") {
				t.Errorf("From %q does not say it is Debian %s's OpenJDK", s.From, c.suite)
			}
		})
	}
	// The JRE 8 standing in for the Alpine one says it is not musl.
	if from := byName[normalizeName(llbdefs.JRE8Alpine)].From; !strings.Contains(from, "glibc, not musl") {
		t.Errorf("8-jre-alpine From %q does not say it is glibc", from)
	}
	// One debootstrap per suite.
	bases := map[string]string{}
	for _, s := range specs {
		if s.recipe != recipeDebootstrap {
			continue
		}
		if other, dup := bases[s.suite()]; dup {
			t.Errorf("%s and %s both bootstrap %s", other, s.Name, s.suite())
		}
		bases[s.suite()] = s.Name
	}
}

func TestCheckSuite(t *testing.T) {
	specs := lookup(Catalog())
	for _, s := range Catalog() {
		if err := checkSuite(s, specs); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	jdk := specs["library/eclipse-temurin:21-jdk"]
	bad := map[string]Spec{}
	s := jdk
	s.Parent = "library/debian:bookworm"
	bad["apt on another suite's parent"] = s
	s = jdk
	s.recipe = recipeAlias
	bad["links without apt"] = s
	s = jdk
	s.links = map[string]string{"opt/java": "/usr/lib/jvm/x"}
	bad["relative link"] = s
	s = jdk
	s.links = map[string]string{"/opt/java": "/usr/lib/jvm/a b"}
	bad["link with a space"] = s
	s = specs["library/busybox:1.37"]
	s.Suite = "trixie"
	bad["dpkg-deb from trixie"] = s
	for what, s := range bad {
		if err := checkSuite(s, specs); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func TestLinkList(t *testing.T) {
	s := Spec{links: map[string]string{"/z": "/b", "/opt/java/openjdk": "/usr/lib/jvm/java-21-openjdk-amd64"}}
	want := "/opt/java/openjdk /usr/lib/jvm/java-21-openjdk-amd64\n/z /b\n"
	if got := s.linkList(); got != want {
		t.Errorf("linkList %q, want %q", got, want)
	}
	if got := (Spec{}).linkList(); got != "" {
		t.Errorf("no links: %q", got)
	}
}
