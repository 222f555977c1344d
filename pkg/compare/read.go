package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minikit/minikit/pkg/report"
)

// ErrNotReport marks input that is not a solve report: not JSON, not a
// JSON object, no "recipes" array, fields of the wrong type, a recipe
// without a name or listed twice, a negative size.
var ErrNotReport = errors.New("not a minikit solve report")

// ErrVersion marks a report of a format version this package cannot read.
var ErrVersion = errors.New("report format version not supported")

// Version is the report format version Read reads. Today's reports carry
// none (they are version 1); a "version" key, if a later format adds one,
// must be this one.
const Version = 1

// ReadFile reads the solve report in the file named name (`minikit solve
// --format json`); errors name the file.
func ReadFile(name string) (*report.Report, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the report: %w", err)
	}
	rep, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rep, nil
}

// Read reads a solve report (`minikit solve --format json`, report.WriteJSON)
// and checks that it is one: see ErrNotReport and ErrVersion.
func Read(r io.Reader) (*report.Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the report: %w", err)
	}
	return parse(data)
}

func parse(data []byte) (*report.Report, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotReport)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: JSON null, not an object", ErrNotReport)
	}
	if raw, ok := top["version"]; ok {
		var v int
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%w: \"version\" is %s, not an integer", ErrNotReport, raw)
		}
		if v != Version {
			return nil, fmt.Errorf("%w: the report is version %d; this minikit reads version %d", ErrVersion, v, Version)
		}
	}
	raw, ok := top["recipes"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, fmt.Errorf("%w: no \"recipes\" array (want the output of 'minikit solve --format json')", ErrNotReport)
	}
	rep, err := report.ReadJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
	}
	if err := check(rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// check verifies what comparing relies on: every recipe named, no key
// twice, no negative size.
func check(rep *report.Report) error {
	if rep == nil {
		return fmt.Errorf("%w: no report", ErrNotReport)
	}
	keys := keysOf(rep)
	// A name listed more than once needs a distinct platform on each
	// entry: keysOf leaves the bare name as the key of an entry without
	// one.
	seenKey, seenName, bare := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, r := range rep.Recipes {
		if r.Name == "" {
			return fmt.Errorf("%w: recipe %d has no name", ErrNotReport, i)
		}
		noPlatform := keys[i] == r.Name
		if seenKey[keys[i]] || bare[r.Name] || (noPlatform && seenName[r.Name]) {
			return fmt.Errorf("%w: recipe %s is listed twice (and not told apart by an image platform)", ErrNotReport, r.Name)
		}
		seenKey[keys[i]], seenName[r.Name] = true, true
		bare[r.Name] = bare[r.Name] || noPlatform
		if img := r.Image; img != nil && (img.Uncompressed < 0 || img.Compressed < 0) {
			return fmt.Errorf("%w: recipe %s has a negative size", ErrNotReport, keys[i])
		}
	}
	return nil
}

// keysOf returns each recipe's key: its name, or, for a name the report
// lists more than once (one image per platform), the name and the image's
// platform, "NAME [linux/arm64]".
func keysOf(rep *report.Report) []string {
	count := map[string]int{}
	for _, r := range rep.Recipes {
		count[r.Name]++
	}
	keys := make([]string, len(rep.Recipes))
	for i, r := range rep.Recipes {
		keys[i] = r.Name
		if count[r.Name] > 1 && r.Image != nil && r.Image.Platform != "" {
			keys[i] = r.Name + " [" + r.Image.Platform + "]"
		}
	}
	return keys
}
