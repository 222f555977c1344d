package runner

// CompilerCache shares one Go build cache among the Go build stages of
// every recipe, through a BuildKit cache mount, in the stages that are
// not the final one (see llbdefs.Sources.CompilerCache): the images stay
// the same, the compiles do less work. Off by default.
func CompilerCache(on bool) Option {
	return func(c *config) error {
		c.compilerCache = on
		return nil
	}
}
