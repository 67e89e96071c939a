package check

// A flag for doing extra checks at runtime that are potentially expensive. Should be enabled for
// testing and debugging.
var Enabled = false
