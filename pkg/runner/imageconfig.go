package runner

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPath is the PATH Docker gives an image whose base sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Apply returns the config of an image whose final stage starts from base
// (the zero value and scratch true for scratch) and sets c, built for
// platform p, by the rules of ImageConfig. base is not changed: the
// result shares none of its slices or maps.
func (c ImageConfig) Apply(base ocispecs.Image, scratch bool, p ocispecs.Platform) ocispecs.Image {
	img := base
	img.Platform = p
	img.RootFS.DiffIDs = slices.Clone(base.RootFS.DiffIDs)
	img.History = slices.Clone(base.History)
	cfg := base.Config
	cfg.Env = slices.Clone(base.Config.Env)
	cfg.Entrypoint = slices.Clone(base.Config.Entrypoint)
	cfg.Cmd = slices.Clone(base.Config.Cmd)
	cfg.Volumes = maps.Clone(base.Config.Volumes)
	cfg.Labels = maps.Clone(base.Config.Labels)
	cfg.ExposedPorts = maps.Clone(base.Config.ExposedPorts)
	if scratch {
		cfg.WorkingDir = "/" // the Dockerfile frontend's FROM scratch config
	}
	if _, ok := envValue(cfg.Env, "PATH"); !ok {
		cfg.Env = append(cfg.Env, "PATH="+DefaultPath)
	}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg.Env = setEnv(cfg.Env, k, v)
	}
	if c.WorkingDir != "" {
		dir := c.WorkingDir
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = dir
	}
	if c.User != "" {
		cfg.User = c.User
	}
	if len(c.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, c.Labels)
	}
	if len(c.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, port := range c.ExposedPorts {
			cfg.ExposedPorts[normalizePort(port)] = struct{}{}
		}
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = slices.Clone(c.Entrypoint)
		cfg.Cmd = nil
	}
	if c.Cmd != nil {
		cfg.Cmd = slices.Clone(c.Cmd)
	}
	img.Config = cfg
	return img
}

// validate checks what Apply cannot make sense of.
func (c ImageConfig) validate() error {
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("image config: env %q: want KEY=VALUE", kv)
		}
	}
	for _, p := range c.ExposedPorts {
		if !validPort.MatchString(p) {
			return fmt.Errorf("image config: exposed port %q: want PORT, PORT/tcp or PORT/udp", p)
		}
		n, _, _ := strings.Cut(p, "/")
		if v, err := strconv.Atoi(n); err != nil || v < 1 || v > 65535 {
			return fmt.Errorf("image config: exposed port %q: want a port from 1 to 65535", p)
		}
	}
	for k := range c.Labels {
		if k == "" {
			return errors.New("image config: a label with an empty key")
		}
	}
	return nil
}

var validPort = regexp.MustCompile(`^[0-9]{1,5}(/(tcp|udp|sctp))?$`)

// normalizePort gives a port without protocol Docker's default, tcp.
func normalizePort(p string) string {
	if strings.Contains(p, "/") {
		return p
	}
	return p + "/tcp"
}

// envValue returns the value of key in env (KEY=VALUE entries).
func envValue(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// setEnv sets key in env, in place when it is there, else appended.
func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// validate checks a target before anything is built.
func (t Target) validate() error {
	if !validName.MatchString(t.Name) {
		return fmt.Errorf("target %q: the name must be a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", t.Name)
	}
	if err := checkPlatforms(t.Platforms); err != nil {
		return fmt.Errorf("target %s: %w", t.Name, err)
	}
	if t.LLB == nil {
		return fmt.Errorf("target %s: no LLB function", t.Name)
	}
	for _, s := range t.Sources {
		if s.Name == "" {
			return fmt.Errorf("target %s: a source without a name", t.Name)
		}
		if isNil(s.FS) {
			return fmt.Errorf("target %s: source %s has no filesystem", t.Name, s.Name)
		}
	}
	if err := t.Config.validate(); err != nil {
		return fmt.Errorf("target %s: %w", t.Name, err)
	}
	if t.Check != nil {
		if err := t.Check.validate(); err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
	}
	return nil
}

// validate checks a Check's values.
func (c *Check) validate() error {
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("check: env %q: want KEY=VALUE", kv)
		}
	}
	if p := c.Probe; p != nil {
		if p.Port < 1 || p.Port > 65535 {
			return fmt.Errorf("check: probe port %d: want 1 to 65535", p.Port)
		}
		if p.Timeout < 0 {
			return fmt.Errorf("check: probe timeout %s is negative", p.Timeout)
		}
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			return fmt.Errorf("check: probe path %q: want one starting with /", p.Path)
		}
	}
	return nil
}

// hostNetwork reports whether the check's container runs on the host's
// network.
func (c *Check) hostNetwork() bool { return c != nil && (c.Network || c.Probe != nil) }

// expected says what the check expects, for RunOutcome.Expected: the
// exit code ("0"), with the output it must match, or the answer a probe
// waits for ("answers :8080/").
func (c *Check) expected() string {
	if c.Probe != nil {
		return "answers " + c.Probe.where()
	}
	s := strconv.Itoa(c.ExpectExit)
	if c.ExpectOutput != nil {
		s += ", output matching " + strconv.Quote(c.ExpectOutput.String())
	}
	return s
}

// where is the probe's ":PORT/PATH".
func (p *Probe) where() string {
	pth := p.Path
	if pth == "" {
		pth = "/"
	}
	return ":" + strconv.Itoa(p.Port) + pth
}

// isNil reports whether an interface value is nil or holds a nil pointer,
// map, slice, func or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// sameFS reports whether two filesystems are the same value. Values
// that cannot be compared (a map, a struct holding a slice) are the same
// only when they are one map or one slice; otherwise they count as
// different.
func sameFS(a, b any) (same bool) {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta.Comparable() {
		// A comparable struct may still hold an interface whose value
		// is not comparable: == panics then.
		defer func() {
			if recover() != nil {
				same = false
			}
		}()
		return a == b
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	switch va.Kind() {
	case reflect.Map, reflect.Slice:
		return va.Pointer() == vb.Pointer() && (va.Kind() != reflect.Slice || va.Len() == vb.Len())
	}
	return false
}
