package pyindex

import (
	"slices"
	"testing"
)

func TestEvalMarker(t *testing.T) {
	for marker, want := range map[string]bool{
		`python_version < "3.8"`:                                       false,
		`python_version >= "3.10"`:                                     true,
		`python_version >= "3.11"`:                                     true,
		`python_version > "3.11"`:                                      false,
		`extra == 'test'`:                                              false,
		`sys_platform == "win32"`:                                      false,
		`sys_platform == "linux" and platform_machine == "x86_64"`:     true,
		`(python_version < "3.10") or platform_system != "Windows"`:    true,
		`platform_python_implementation == "PyPy" or extra == "speed"`: false,
		`"linux" in sys_platform`:                                      true,
		`os_name not in "nt java"`:                                     true,
	} {
		got, err := evalMarker(marker)
		if err != nil || got != want {
			t.Errorf("evalMarker(%q) = %v, %v; want %v", marker, got, err, want)
		}
	}
	for _, bad := range []string{`python_version <`, `no_such_variable == "1"`, `(python_version < "3.8"`, `python_version = "3"`} {
		if _, err := evalMarker(bad); err == nil {
			t.Errorf("evalMarker(%q): no error", bad)
		}
	}
}

func TestParseRequirement(t *testing.T) {
	for s, want := range map[string]requirement{
		"numpy (>=1.16)": {name: "numpy"},
		"typing-extensions ; python_version < \"3.8\"": {name: "typing-extensions", marker: `python_version < "3.8"`},
		"contourpy[bokeh] ; extra == 'mypy'":           {name: "contourpy", marker: "extra == 'mypy'"},
		"python-dateutil>=2.7":                         {name: "python-dateutil"},
		"Pillow":                                       {name: "Pillow"},
	} {
		got, err := parseRequirement(s)
		if err != nil || got != want {
			t.Errorf("parseRequirement(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	if _, err := parseRequirement(">=1.0"); err == nil {
		t.Error("a requirement without a name parsed")
	}
}

func TestEggRequires(t *testing.T) {
	got := eggRequires("six>=1.5\n\n[:python_version < \"3.10\"]\nnumpy>=1.20\n\n[test]\npytest>=6.0\n\n[docs:sys_platform == \"linux\"]\nsphinx\n")
	want := []string{
		"six>=1.5",
		`numpy>=1.20 ; (python_version < "3.10")`,
		`pytest>=6.0 ; extra == "test"`,
		`sphinx ; (sys_platform == "linux") and extra == "docs"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("eggRequires:\n got %q\nwant %q", got, want)
	}
	md := &metadata{requires: got}
	names, err := md.neededRequires()
	if err != nil || !slices.Equal(names, []string{"six"}) {
		t.Errorf("needed requirements %v, %v; want [six]", names, err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string][2]string{
		"PyYAML":          {"pyyaml", "PyYAML"},
		"python-dateutil": {"python-dateutil", "python_dateutil"},
		"zope.interface":  {"zope-interface", "zope_interface"},
		"Foo__Bar-.baz":   {"foo-bar-baz", "Foo_Bar_baz"},
	} {
		if n, d := normalize(in), distName(in); n != want[0] || d != want[1] {
			t.Errorf("%s: normalize %q distName %q, want %q %q", in, n, d, want[0], want[1])
		}
	}
	for in, want := range map[string]string{"1:1.24.2-1+deb12u1": "1.24.2", "1.5.3+dfsg-2": "1.5.3", "1.4.4-1+b1": "1.4.4", "6.0-3+b2": "6.0", "2.8.2-2": "2.8.2"} {
		if got := upstreamVersion(in); got != want {
			t.Errorf("upstreamVersion(%q) = %q, want %q", in, got, want)
		}
	}
	if got := firstAlternatives("libblas3 | libblas.so.3, libc6 (>= 2.35), python3:any"); !slices.Equal(got, []string{"libblas3", "libc6", "python3"}) {
		t.Errorf("firstAlternatives: %v", got)
	}
}
