//go:build race

package pacman

const raceEnabled = true
