package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// completeCommand is the hidden command the completion scripts call for
// the words that are not known when a script is written: the recipe names.
const completeCommand = "__complete"

// shellNames are the shells `minikit completion` writes a script for.
func shellNames() []string { return []string{"bash", "zsh", "fish"} }

// completion writes a shell completion script. The commands, their verbs
// and flags are written into the script, from the real flag sets; recipe
// names are asked of minikit (`minikit __complete recipes`) as they are
// completed.
func (a app) completion(ctx context.Context, args []string) error {
	fs := a.flags("completion", "bash|zsh|fish\n\n"+
		"Load it:\n"+
		"  bash: source <(minikit completion bash)     (in ~/.bashrc)\n"+
		"  zsh:  source <(minikit completion zsh)      (in ~/.zshrc, after compinit),\n"+
		"        or save it as _minikit in a directory of $fpath\n"+
		"  fish: minikit completion fish > ~/.config/fish/completions/minikit.fish")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one shell: %s", strings.Join(shellNames(), ", "))
	}
	m := a.completionModel()
	var script string
	switch fs.Arg(0) {
	case "bash":
		script = bashScript(m)
	case "zsh":
		script = zshScript(m)
	case "fish":
		script = fishScript(m)
	default:
		return usagef("unknown shell %q: want one of %s", fs.Arg(0), strings.Join(shellNames(), ", "))
	}
	if _, err := fmt.Fprint(a.stdout, script); err != nil {
		return fmt.Errorf("writing the completion script: %w", err)
	}
	return nil
}

// complete prints, one a line, the words a completion script asks for:
// `__complete recipes`, every recipe name, the extras' too.
func (a app) complete(ctx context.Context, args []string) error {
	fs := a.flags(completeCommand, "recipes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "recipes" {
		return usagef("want: %s recipes", completeCommand)
	}
	var b strings.Builder
	for _, r := range llbdefs.All() {
		b.WriteString(r.Name + "\n")
	}
	if _, err := fmt.Fprint(a.stdout, b.String()); err != nil {
		return fmt.Errorf("writing the recipe names: %w", err)
	}
	return nil
}

// complWord is a word to complete with what it means.
type complWord struct{ word, about string }

// complFlag is a flag to complete.
type complFlag struct {
	name  string // as typed: --parallel, -o
	value bool   // it takes a value (the next word)
	about string
}

// complSpec is what can follow a command, or a command and its verb
// (key "standins build"); key "" is minikit itself.
type complSpec struct {
	key   string
	flags []complFlag
	// verbs are the words the first argument may be.
	verbs []complWord
	// args are the arguments after the verbs (or all, without verbs).
	args argKind
}

// completionModel is what the scripts complete, from the command registry
// and the commands' real flag sets.
func (a app) completionModel() []complSpec {
	top := complSpec{key: "", flags: []complFlag{
		{name: "--help", about: "minikit's usage"},
		{name: "--version", about: "the versions of minikit, BuildKit and Go"},
	}}
	var commandWords []complWord
	var specs []complSpec
	for _, cf := range a.allFlags() {
		s := complSpec{key: cf.path}
		cf.fs.VisitAll(func(f *flag.Flag) {
			s.flags = append(s.flags, complFlag{name: flagName(f), value: takesValue(f), about: flagUsage(f)})
		})
		if cf.path == cf.cmd.name {
			commandWords = append(commandWords, complWord{cf.cmd.name, cf.cmd.summary})
			for _, v := range cf.cmd.verbs {
				s.verbs = append(s.verbs, complWord{word: v})
			}
			s.args = cf.cmd.args
		}
		specs = append(specs, s)
	}
	top.verbs = commandWords
	for i := range specs {
		if specs[i].args == argCommands {
			specs[i].verbs, specs[i].args = commandWords, argNone
		}
	}
	return append([]complSpec{top}, specs...)
}

// argWord names an argKind in the scripts.
func argWord(k argKind) string {
	switch k {
	case argRecipes:
		return "recipes"
	case argRecipesOrFiles:
		return "recipes-files"
	case argFiles:
		return "files"
	case argDirs:
		return "dirs"
	}
	return "none"
}

// about shortens a usage text for a completion menu: its first clause,
// at most 70 bytes.
func about(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	const most = 70
	if len(s) > most {
		cut := strings.LastIndexByte(s[:most], ' ')
		if cut < most/2 {
			cut = most
		}
		s = strings.TrimRight(s[:cut], " ,:") + "..."
	}
	return s
}

// names lists a spec's flag names, and those of its flags taking a value
// (without dashes: the scripts strip them from the word typed).
func (s complSpec) names() (all, values []string) {
	for _, f := range s.flags {
		all = append(all, f.name)
		if f.value {
			values = append(values, strings.TrimLeft(f.name, "-"))
		}
	}
	return all, values
}

func verbWords(s complSpec) []string {
	var w []string
	for _, v := range s.verbs {
		w = append(w, v.word)
	}
	return w
}

// bashQuote quotes a word for bash and zsh: in single quotes, a single
// quote closing them, escaped, and opening them again.
func bashQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func bashScript(specs []complSpec) string {
	var b strings.Builder
	b.WriteString(`# bash completion for minikit, written by 'minikit completion bash'.
# Load it with: source <(minikit completion bash)

_minikit_spec() {
    case $1 in
`)
	for _, s := range specs {
		all, values := s.names()
		fmt.Fprintf(&b, "    %s)\n", bashQuote(s.key))
		fmt.Fprintf(&b, "        flags=%s values=%s\n", bashQuote(strings.Join(all, " ")), bashQuote(" "+strings.Join(values, " ")+" "))
		fmt.Fprintf(&b, "        verbs=%s args=%s ;;\n", bashQuote(strings.Join(verbWords(s), " ")), argWord(s.args))
	}
	b.WriteString(`    *) return 1 ;;
    esac
}

# _minikit_recipes asks minikit for the recipe names.
_minikit_recipes() {
    local mk=${COMP_WORDS[0]}
    [[ $mk == "~/"* ]] && mk=$HOME/${mk#"~/"}
    "$mk" __complete recipes 2>/dev/null
}

_minikit() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=''
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    local -a pos=()
    local i
    for (( i = 1; i < COMP_CWORD; i++ )); do
        [[ ${COMP_WORDS[i]} == -* ]] || pos+=("${COMP_WORDS[i]}")
    done
    local flags='' values='' verbs='' args='' nargs
    if (( ${#pos[@]} > 1 )) && _minikit_spec "${pos[0]} ${pos[1]}"; then
        nargs=$(( ${#pos[@]} - 2 ))
    else
        _minikit_spec "${pos[0]-}" || return 0
        nargs=$(( ${#pos[@]} - 1 ))
    fi
    local p=${prev#-}
    p=${p#-}
    if [[ $prev == -* && $prev != *=* && $values == *" $p "* ]]; then
        return 0 # the flag's value: file names
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
        return 0
    fi
    if [[ -n $verbs ]] && (( nargs <= 0 )); then
        mapfile -t COMPREPLY < <(compgen -W "$verbs" -- "$cur")
        return 0
    fi
    case $args in
    recipes)
        mapfile -t COMPREPLY < <(compgen -W "$(_minikit_recipes)" -- "$cur") ;;
    recipes-files)
        mapfile -t COMPREPLY < <(compgen -W "$(_minikit_recipes)" -- "$cur"; compgen -f -- "$cur") ;;
    dirs)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    files) ;;
    *) compopt +o default 2>/dev/null ;;
    esac
    return 0
}

complete -o default -F _minikit minikit
`)
	return b.String()
}

func zshScript(specs []complSpec) string {
	var b strings.Builder
	b.WriteString(`#compdef minikit
# zsh completion for minikit, written by 'minikit completion zsh'.
# Load it with: source <(minikit completion zsh) (after compinit), or save
# it as _minikit in a directory of $fpath.

_minikit_spec() {
  case $1 in
`)
	for _, s := range specs {
		_, values := s.names()
		fmt.Fprintf(&b, "  (%s)\n", bashQuote(s.key))
		b.WriteString("    flags=(")
		for _, f := range s.flags {
			b.WriteString(" " + bashQuote(f.name+":"+about(f.about)))
		}
		b.WriteString(" )\n    values=(")
		for _, v := range values {
			b.WriteString(" " + bashQuote(v))
		}
		b.WriteString(" )\n    verbs=(")
		for _, v := range s.verbs {
			w := v.word
			if v.about != "" {
				w += ":" + about(v.about)
			}
			b.WriteString(" " + bashQuote(w))
		}
		fmt.Fprintf(&b, " )\n    args=%s ;;\n", argWord(s.args))
	}
	b.WriteString(`  (*) return 1 ;;
  esac
}

# _minikit_recipes asks minikit for the recipe names.
_minikit_recipes() {
  local mk=${words[1]/#\~/$HOME}
  "$mk" __complete recipes 2>/dev/null
}

_minikit() {
  local -a flags values verbs pos recipes
  local args cur=${words[CURRENT]} prev=${words[CURRENT-1]} i nargs
  for (( i = 2; i < CURRENT; i++ )); do
    [[ ${words[i]} == -* ]] || pos+=("${words[i]}")
  done
  if (( ${#pos} > 1 )) && _minikit_spec "${pos[1]} ${pos[2]}"; then
    nargs=$(( ${#pos} - 2 ))
  else
    flags=() values=() verbs=() args=none
    _minikit_spec "${pos[1]}" || return 1
    nargs=$(( ${#pos} - 1 ))
  fi
  local p=${prev#-}
  p=${p#-}
  if [[ $prev == -* && $prev != *=* ]] && (( ${values[(Ie)$p]} )); then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    _describe -t flags 'flag' flags
    return
  fi
  if (( ${#verbs} && nargs <= 0 )); then
    _describe -t verbs 'argument' verbs
    return
  fi
  case $args in
  (recipes|recipes-files)
    local ret=1
    recipes=(${(f)"$(_minikit_recipes)"})
    compadd -a recipes && ret=0
    if [[ $args == recipes-files ]]; then
      _files && ret=0
    fi
    return ret ;;
  (files) _files ;;
  (dirs) _directories ;;
  esac
}

if [[ ${funcstack[1]} == _minikit ]]; then
  _minikit "$@"
else
  compdef _minikit minikit
fi
`)
	return b.String()
}

// fishQuote quotes a word for fish: single quotes, with \ and ' escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishScript(specs []complSpec) string {
	var b strings.Builder
	b.WriteString(`# fish completion for minikit, written by 'minikit completion fish'.
# Load it with: minikit completion fish | source, or save it as
# ~/.config/fish/completions/minikit.fish

# __minikit_args prints the words typed after minikit that are not flags.
function __minikit_args
    set -l words (commandline -opc)
    set -e words[1]
    for w in $words
        string match -q -- '-*' $w; or echo $w
    end
end

# __minikit_at CMD [VERB]: the words typed start with CMD (and VERB).
function __minikit_at
    set -l args (__minikit_args)
    test (count $args) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$args[$i]" = "$argv[$i]"; or return 1
    end
end

# __minikit_first [CMD]: CMD is typed and nothing after it (no CMD: nothing typed).
function __minikit_first
    set -l args (__minikit_args)
    test (count $args) -eq (count $argv); and __minikit_at $argv
end

# __minikit_recipes asks minikit for the recipe names.
function __minikit_recipes
    set -l mk (commandline -opc)[1]
    $mk __complete recipes 2>/dev/null
end

complete -c minikit -f
`)
	for _, s := range specs {
		cond := "__minikit_at " + s.key
		first := "__minikit_first " + s.key
		if s.key == "" {
			cond, first = "__minikit_first", "__minikit_first"
		}
		fmt.Fprintf(&b, "\n# minikit %s\n", s.key)
		for _, f := range s.flags {
			opt := "-l " + strings.TrimPrefix(f.name, "--")
			if !strings.HasPrefix(f.name, "--") {
				opt = "-s " + strings.TrimPrefix(f.name, "-")
			}
			if f.value {
				opt += " -r -F"
			}
			fmt.Fprintf(&b, "complete -c minikit -n %s %s -d %s\n", fishQuote(strings.TrimSpace(cond)), opt, fishQuote(about(f.about)))
		}
		for _, v := range s.verbs {
			fmt.Fprintf(&b, "complete -c minikit -n %s -a %s", fishQuote(strings.TrimSpace(first)), fishQuote(v.word))
			if v.about != "" {
				fmt.Fprintf(&b, " -d %s", fishQuote(about(v.about)))
			}
			b.WriteString("\n")
		}
		// The arguments after the verbs, if any.
		cond = strings.TrimSpace(cond)
		if len(s.verbs) > 0 {
			continue
		}
		switch s.args {
		case argRecipes:
			fmt.Fprintf(&b, "complete -c minikit -n %s -a '(__minikit_recipes)'\n", fishQuote(cond))
		case argRecipesOrFiles:
			fmt.Fprintf(&b, "complete -c minikit -n %s -F -a '(__minikit_recipes)'\n", fishQuote(cond))
		case argFiles:
			fmt.Fprintf(&b, "complete -c minikit -n %s -F\n", fishQuote(cond))
		case argDirs:
			fmt.Fprintf(&b, "complete -c minikit -n %s -a '(__fish_complete_directories)'\n", fishQuote(cond))
		}
	}
	return b.String()
}
