package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// extrasHint adds to a selection error, when --extras was not given and
// the pattern names extra recipes, how to select them.
func extrasHint(err error, extras bool) error {
	var ue *llbdefs.UnknownError
	if extras || !errors.As(err, &ue) {
		return err
	}
	if got, serr := llbdefs.Select(llbdefs.Extras(), ue.Pattern); serr == nil && len(got) > 0 {
		return fmt.Errorf("%q names extra recipe(s) beyond the seed (%s...): add --extras", ue.Pattern, got[0].Name)
	}
	return err
}

// sourceDateEpoch parses --source-date-epoch: unix seconds, or "git" for
// the time of the last commit touching samples/ in the repository of the
// working directory.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "git" {
		out, err := exec.Command("git", "log", "-1", "--format=%ct", "--", ":/samples").Output()
		if err != nil {
			return time.Time{}, fmt.Errorf("git log -- samples: %w (run from minikit's repository, or give unix seconds)", err)
		}
		v = strings.TrimSpace(string(out))
		if v == "" {
			return time.Time{}, errors.New("no commit touches samples/ here (run from minikit's repository, or give unix seconds)")
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, fmt.Errorf("%q: want unix seconds or git", v)
	}
	return time.Unix(n, 0).UTC(), nil
}
