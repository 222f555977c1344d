package explore

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                          nil,
		"  a  b\tc ":                {"a", "b", "c"},
		`--name 'a b' "c \"d\" $x"`: {"--name", "a b", `c "d" $x`},
		`x\ y 'it'\''s'`:            {"x y", "it's"},
		`""`:                        {""},
	} {
		got, err := SplitArgs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `end\`} {
		if _, err := SplitArgs(bad); err == nil {
			t.Errorf("SplitArgs(%q): no error", bad)
		}
	}
}

func TestParseProbe(t *testing.T) {
	for in, want := range map[string]string{
		"http://:8080/":                 ":8080/",
		"http://:8080":                  ":8080/",
		"http://127.0.0.1:9/health?x=1": ":9/health?x=1",
		"http://localhost:80/a%20b":     ":80/a%20b",
	} {
		p, err := ParseProbe(in)
		if err != nil {
			t.Errorf("ParseProbe(%q): %v", in, err)
			continue
		}
		if got := ":" + strconv.Itoa(p.Port) + p.Path; got != want {
			t.Errorf("ParseProbe(%q) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"https://:8080/", "http://example.com:80/", "http://:0/", "http://:99999/", "http:///", ":8080"} {
		if _, err := ParseProbe(bad); err == nil {
			t.Errorf("ParseProbe(%q): no error", bad)
		}
	}
}

func TestCheckSpec(t *testing.T) {
	c, err := CheckSpec{Args: "serve --port 8080", ArgsSet: true, Env: []string{"A=1", "B="}, ExpectExit: 3, ExpectOutput: "^ok", Network: true}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Args, []string{"serve", "--port", "8080"}) || !slices.Equal(c.Env, []string{"A=1", "B="}) || c.ExpectExit != 3 ||
		c.ExpectOutput == nil || !c.ExpectOutput.MatchString("ok\n") || !c.Network || c.Probe != nil {
		t.Errorf("%+v", c)
	}
	c, err = CheckSpec{Probe: "http://:8080/healthz"}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if c.Probe == nil || c.Probe.Port != 8080 || c.Probe.Path != "/healthz" || c.Probe.Timeout != DefaultProbeTimeout {
		t.Errorf("probe %+v", c.Probe)
	}
	c, _ = CheckSpec{}.Check()
	if c.Args != nil || c.ExpectExit != 0 || c.Probe != nil {
		t.Errorf("zero spec: %+v", c)
	}
	for _, bad := range []CheckSpec{
		{Args: "", ArgsSet: true},
		{Args: "'", ArgsSet: true},
		{Env: []string{"NOEQUALS"}},
		{Env: []string{"=v"}},
		{ExpectExit: 256},
		{ExpectOutput: "("},
		{Probe: "http://:8080/", ExpectOutput: "x"},
		{Probe: "http://:8080/", ExpectExit: 1},
		{Probe: "http://:8080/", ProbeTimeout: -time.Second},
		{Probe: "ftp://:21/"},
	} {
		if _, err := bad.Check(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
