package explore

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minikit/minikit/pkg/runner"
)

// DefaultProbeTimeout is how long a probed server has to answer.
const DefaultProbeTimeout = 10 * time.Second

// CheckSpec is the check as a command line gives it (`minikit explore`'s
// flags), before it is read into a runner.Check.
type CheckSpec struct {
	// Args replaces the image's Cmd when ArgsSet (a command line, split as
	// a shell splits words: SplitArgs).
	Args    string
	ArgsSet bool
	// Env entries are KEY=VALUE.
	Env []string
	// ExpectExit is the exit code a working program ends with.
	ExpectExit int
	// ExpectOutput, if set, is a regular expression its standard output
	// must match.
	ExpectOutput string
	// Probe, if set, is http://:PORT/PATH: the program is a server that
	// must answer there (2xx) within ProbeTimeout.
	Probe        string
	ProbeTimeout time.Duration
	// Network runs the program on the host's network (a probe always
	// does).
	Network bool
}

// Check reads the spec. Its errors say which part is wrong.
func (s CheckSpec) Check() (runner.Check, error) {
	var c runner.Check
	if s.ArgsSet {
		args, err := SplitArgs(s.Args)
		if err != nil {
			return c, fmt.Errorf("--args: %w", err)
		}
		if len(args) == 0 {
			return c, errors.New("--args: an empty command line")
		}
		c.Args = args
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			return c, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		c.Env = append(c.Env, kv)
	}
	if s.ExpectExit < 0 || s.ExpectExit > 255 {
		return c, fmt.Errorf("--expect-exit %d: an exit code is 0 to 255", s.ExpectExit)
	}
	c.ExpectExit = s.ExpectExit
	if s.ExpectOutput != "" {
		re, err := regexp.Compile(s.ExpectOutput)
		if err != nil {
			return c, fmt.Errorf("--expect-output: %w", err)
		}
		c.ExpectOutput = re
	}
	c.Network = s.Network
	if s.Probe != "" {
		if c.ExpectOutput != nil {
			return c, errors.New("--probe and --expect-output: a probe checks a server's answer, not its output; give one of them")
		}
		if s.ExpectExit != 0 {
			return c, errors.New("--probe and --expect-exit: a probed server is stopped once it answers; its exit code is not checked")
		}
		pr, err := ParseProbe(s.Probe)
		if err != nil {
			return c, err
		}
		pr.Timeout = s.ProbeTimeout
		if pr.Timeout == 0 {
			pr.Timeout = DefaultProbeTimeout
		}
		if pr.Timeout < 0 {
			return c, fmt.Errorf("--probe-timeout %s: negative", s.ProbeTimeout)
		}
		c.Probe = pr
	}
	return c, nil
}

// ParseProbe reads a probe address: http://:PORT/PATH, the host empty,
// 127.0.0.1 or localhost (the server runs on the host's network, polled
// on loopback); the path defaults to /.
func ParseProbe(s string) (*runner.Probe, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--probe %q: %w", s, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("--probe %q: want http://:PORT/PATH", s)
	}
	switch u.Hostname() {
	case "", "127.0.0.1", "localhost":
	default:
		return nil, fmt.Errorf("--probe %q: the server is polled on loopback: give http://:PORT/PATH", s)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("--probe %q: want a port, 1 to 65535 (http://:PORT/PATH)", s)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return &runner.Probe{Port: port, Path: p}, nil
}

// SplitArgs splits a command line into words as a shell does, without
// expanding anything: blanks separate words, '...' quotes literally,
// "..." quotes with \ escaping \ " and $, and \ outside quotes escapes
// the next character.
func SplitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("a trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case r == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("an unterminated ' quote")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i, inWord = j, true
		case r == '"':
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && strings.ContainsRune(`\"$`, rs[j+1]) {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New(`an unterminated " quote`)
			}
			i, inWord = j, true
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
