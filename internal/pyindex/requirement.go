package pyindex

import (
	"fmt"
	"regexp"
	"strings"
)

// target is the interpreter the wheels are for: the values of the
// environment markers (PEP 508) a requirement's marker is evaluated
// against.
var target = map[string]string{
	"python_version":                 "3.11",
	"python_full_version":            "3.11.2",
	"implementation_name":            "cpython",
	"platform_python_implementation": "CPython",
	"implementation_version":         "3.11.2",
	"sys_platform":                   "linux",
	"platform_system":                "Linux",
	"os_name":                        "posix",
	"platform_machine":               "x86_64",
}

var (
	// nonName ends a requirement's project name.
	nonName = regexp.MustCompile(`[^A-Za-z0-9._-]`)
	// nameSeps are the separators project names normalize.
	nameSeps = regexp.MustCompile(`[-_.]+`)
)

// normalize is PEP 503's normalized project name: lower case, runs of
// "-", "_" and "." replaced by one "-".
func normalize(name string) string {
	return strings.ToLower(nameSeps.ReplaceAllString(name, "-"))
}

// distName is a project name as wheel file names and .dist-info
// directories spell it (PEP 427): runs of "-", "_" and "." become "_".
func distName(name string) string {
	return nameSeps.ReplaceAllString(name, "_")
}

// requirement is one Requires-Dist value: a project name, the rest of
// the specifier, and its environment marker ("" when it has none).
type requirement struct {
	name   string
	marker string
}

// parseRequirement reads a Requires-Dist value such as
// `numpy (>=1.16)` or `typing-extensions ; python_version < "3.8"`.
func parseRequirement(s string) (requirement, error) {
	spec, marker, _ := strings.Cut(s, ";")
	spec = strings.TrimSpace(spec)
	loc := nonName.FindStringIndex(spec)
	name := spec
	if loc != nil {
		name = spec[:loc[0]]
	}
	if name == "" {
		return requirement{}, fmt.Errorf("requirement %q: no project name", s)
	}
	return requirement{name: name, marker: strings.TrimSpace(marker)}, nil
}

// needed says whether the requirement applies to the target interpreter
// when no extra is asked for.
func (r requirement) needed() (bool, error) {
	if r.marker == "" {
		return true, nil
	}
	ok, err := evalMarker(r.marker)
	if err != nil {
		return false, fmt.Errorf("requirement %s: %w", r.name, err)
	}
	return ok, nil
}

// markerToken splits a marker into quoted strings, parentheses,
// operators and words.
var markerToken = regexp.MustCompile(`\s*("[^"]*"|'[^']*'|\(|\)|===|==|!=|<=|>=|~=|<|>|[A-Za-z_][A-Za-z0-9_.]*)`)

// evalMarker evaluates a PEP 508 environment marker against target,
// with no extra requested: `extra == "x"` is false.
func evalMarker(m string) (bool, error) {
	var toks []string
	rest := m
	for strings.TrimSpace(rest) != "" {
		loc := markerToken.FindStringSubmatchIndex(rest)
		if loc == nil || loc[0] != 0 {
			return false, fmt.Errorf("marker %q: cannot parse at %q", m, rest)
		}
		toks = append(toks, rest[loc[2]:loc[3]])
		rest = rest[loc[1]:]
	}
	p := &markerParser{toks: toks}
	v, err := p.or()
	if err != nil {
		return false, fmt.Errorf("marker %q: %w", m, err)
	}
	if p.i != len(toks) {
		return false, fmt.Errorf("marker %q: unexpected %q", m, toks[p.i])
	}
	return v, nil
}

type markerParser struct {
	toks []string
	i    int
}

func (p *markerParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *markerParser) next() string {
	t := p.peek()
	p.i++
	return t
}

func (p *markerParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.peek() == "or" {
		p.next()
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *markerParser) and() (bool, error) {
	v, err := p.atom()
	for err == nil && p.peek() == "and" {
		p.next()
		var w bool
		w, err = p.atom()
		v = v && w
	}
	return v, err
}

func (p *markerParser) atom() (bool, error) {
	if p.peek() == "(" {
		p.next()
		v, err := p.or()
		if err != nil {
			return false, err
		}
		if p.next() != ")" {
			return false, fmt.Errorf("missing )")
		}
		return v, nil
	}
	lhs, err := p.value()
	if err != nil {
		return false, err
	}
	op := p.next()
	if op == "not" && p.peek() == "in" {
		p.next()
		op = "not in"
	}
	rhs, err := p.value()
	if err != nil {
		return false, err
	}
	if lhs.extra || rhs.extra {
		return false, nil // no extra is requested
	}
	return compareMarker(lhs, op, rhs)
}

// markerValue is a marker operand: its value, whether it is a version
// variable (compared as versions) and whether it is "extra".
type markerValue struct {
	s       string
	version bool
	extra   bool
}

func (p *markerParser) value() (markerValue, error) {
	t := p.next()
	switch {
	case t == "":
		return markerValue{}, fmt.Errorf("missing operand")
	case t[0] == '"' || t[0] == '\'':
		return markerValue{s: t[1 : len(t)-1]}, nil
	case t == "extra":
		return markerValue{extra: true}, nil
	}
	v, ok := target[t]
	if !ok {
		return markerValue{}, fmt.Errorf("unknown marker variable %q", t)
	}
	return markerValue{s: v, version: strings.HasSuffix(t, "_version")}, nil
}

func compareMarker(l markerValue, op string, r markerValue) (bool, error) {
	switch op {
	case "in":
		return strings.Contains(r.s, l.s), nil
	case "not in":
		return !strings.Contains(r.s, l.s), nil
	}
	c := strings.Compare(l.s, r.s)
	if l.version || r.version {
		c = compareVersions(l.s, r.s)
	}
	switch op {
	case "==", "===":
		return c == 0, nil
	case "!=":
		return c != 0, nil
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=", "~=":
		return c >= 0, nil
	}
	return false, fmt.Errorf("unknown marker operator %q", op)
}

// compareVersions compares dotted numeric versions ("3.8" < "3.11").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscanf(as[i], "%d", &x)
		}
		if i < len(bs) {
			fmt.Sscanf(bs[i], "%d", &y)
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// eggRequires turns an egg-info requires.txt into Requires-Dist values:
// the lines before any section apply always, "[extra]" sections to that
// extra, "[:marker]" sections under that marker, "[extra:marker]" under
// both.
func eggRequires(requiresTxt string) []string {
	var out []string
	section := ""
	for _, line := range strings.Split(requiresTxt, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			continue
		}
		extra, marker, _ := strings.Cut(section, ":")
		var conds []string
		if marker != "" {
			conds = append(conds, "("+marker+")")
		}
		if extra != "" {
			conds = append(conds, `extra == "`+extra+`"`)
		}
		if len(conds) > 0 {
			line += " ; " + strings.Join(conds, " and ")
		}
		out = append(out, line)
	}
	return out
}
