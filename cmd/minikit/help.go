package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/minikit/minikit/internal/editdist"
)

// help prints the top-level usage, or a command's own help: the command is
// run with --help, so the help is made from its real flag set.
func (a app) help(ctx context.Context, args []string) error {
	fs := a.flags("help", "[COMMAND [VERB]]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(a.stdout, usage())
		return nil
	}
	c, ok := lookup(fs.Arg(0))
	if !ok {
		return usagef("unknown command %q%s", fs.Arg(0), didYouMean(fs.Arg(0)))
	}
	// A command asked for its help returns before doing anything; a
	// context already canceled makes sure a command that did not would
	// stop at once.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	return c.run(a, stopped, append(fs.Args()[1:], "--help"))
}

// didYouMean suggests the command closest to an unknown name, as
// "; did you mean solve?", or nothing.
func didYouMean(name string) string {
	best, bestDist := "", 3 // at most two edits away
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		d := editdist.Levenshtein(name, c.name)
		if strings.HasPrefix(c.name, name) && len(name) >= 2 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c.name, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// writeHelp writes a command's help: its synopsis, what it does and its
// flags, written --name (-o for a one-letter name; the flag package takes
// one dash or two).
func writeHelp(w io.Writer, fs *flag.FlagSet, name, synopsis string) {
	// The synopsis's first line is the usage; the rest explains it,
	// after what the command does.
	first, more, _ := strings.Cut(synopsis, "\n")
	fmt.Fprintf(w, "Usage: minikit %s", name)
	if first != "" {
		fmt.Fprintf(w, " %s", first)
	}
	fmt.Fprintln(w)
	if c, ok := lookup(name); ok && c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", upperFirst(c.summary))
	}
	if more = strings.Trim(more, "\n"); more != "" {
		fmt.Fprintf(w, "\n%s\n", more)
	}
	heading := true
	fs.VisitAll(func(f *flag.Flag) {
		if heading {
			fmt.Fprint(w, "\nFlags:\n")
			heading = false
		}
		fmt.Fprintf(w, "  %s\n", flagHead(f))
		text := flagUsage(f)
		if def, ok := flagDefault(f); ok {
			text += " (default " + def + ")"
		}
		for _, line := range wrap(text, 74) {
			fmt.Fprintf(w, "      %s\n", line)
		}
	})
}

// flagName is a flag as it is typed: --name, or -o for a one-letter name.
func flagName(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// flagHead is a flag with its value's placeholder: --parallel int,
// --report FILE, --all.
func flagHead(f *flag.Flag) string {
	placeholder, _ := flag.UnquoteUsage(f)
	if placeholder == "" {
		return flagName(f)
	}
	return flagName(f) + " " + placeholder
}

// flagUsage is a flag's usage text, its placeholder's backquotes removed.
func flagUsage(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	return usage
}

// takesValue tells whether a flag needs a value (all but booleans).
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// flagDefault is a flag's default as its help shows it (strings quoted),
// and false when the default is the zero value, which the help omits, as
// the flag package's own PrintDefaults does.
func flagDefault(f *flag.Flag) (string, bool) {
	if isZeroValue(f) {
		return "", false
	}
	if reflect.TypeOf(f.Value).String() == "*flag.stringValue" {
		return fmt.Sprintf("%q", f.DefValue), true
	}
	return f.DefValue, true
}

// isZeroValue tells whether a flag's default is its type's zero value, as
// the flag package decides it.
func isZeroValue(f *flag.Flag) (zero bool) {
	typ := reflect.TypeOf(f.Value)
	var z reflect.Value
	if typ.Kind() == reflect.Pointer {
		z = reflect.New(typ.Elem())
	} else {
		z = reflect.Zero(typ)
	}
	defer func() {
		// A Value whose String cannot handle its zero value: show the
		// default.
		if recover() != nil {
			zero = false
		}
	}()
	v, ok := z.Interface().(flag.Value)
	return ok && f.DefValue == v.String()
}

// wrap breaks text into lines of at most width bytes, at spaces (a longer
// word gets a line of its own).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// commandFlags is the flag set of a command, or of a verb with its own
// flags (standins build).
type commandFlags struct {
	path string // "solve", "standins build"
	cmd  command
	fs   *flag.FlagSet
}

// flagSetOf runs a command line with --help, its output discarded, and
// returns the flag set the command made last: a command's flags, learnt
// without running it.
func (a app) flagSetOf(args ...string) *flag.FlagSet {
	c, ok := lookup(args[0])
	if !ok {
		return nil
	}
	var last *flag.FlagSet
	b := a
	b.stdout, b.stderr = io.Discard, io.Discard
	b.flagSet = func(fs *flag.FlagSet) { last = fs }
	// As in help: a command that did not stop at --help stops at once.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	// What the command returns (flag.ErrHelp) says nothing more.
	_ = c.run(b, stopped, append(args[1:], "--help"))
	return last
}

// allFlags returns the flag set of every command the usage text lists,
// and of their verbs that have their own, in the usage text's order.
func (a app) allFlags() []commandFlags {
	var all []commandFlags
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		fs := a.flagSetOf(c.name)
		if fs == nil {
			// A command that makes no flag set: nothing to list but
			// the command.
			fs = flag.NewFlagSet("minikit "+c.name, flag.ContinueOnError)
		}
		all = append(all, commandFlags{path: c.name, cmd: c, fs: fs})
		for _, v := range c.verbs {
			vfs := a.flagSetOf(c.name, v)
			if vfs == nil || vfs.Name() == fs.Name() {
				continue
			}
			all = append(all, commandFlags{path: strings.TrimPrefix(vfs.Name(), "minikit "), cmd: c, fs: vfs})
		}
	}
	return all
}
