package measure

import "fmt"

// Version changes whenever what a measurement contains changes, so that
// stored measurements from an older minikit are not reused.
const Version = "3"

// Key describes the options a measurement is made with, for a cache of
// measurements keyed by manifest digest: two measurements of one image
// with the same Key are equal.
func Key(opts ...Option) string {
	o := newOptions(opts)
	return fmt.Sprintf("v%s top=%d base=%d bases=%q platform=%q ref=%q",
		Version, o.top, o.baseLayers, o.baseDiffIDs, o.platform, o.ref)
}
