//go:build race

package testkit

// Race is whether this test binary is built with -race; Binaries builds
// the programs the same way.
const Race = true
