package man

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// pages are the manual pages, each with the command whose flags it documents
// and whether it is the command's page (flags as "--name") or its
// configuration page (bare keys and environment variables).
var pages = []struct {
	file      string
	cmd       string
	conf      bool
	envPrefix string
}{
	{"pkgtorrent-get.1", "pkgtorrent-get", false, ""},
	{"pkgtorrent.conf.5", "pkgtorrent-get", true, "PKGTORRENT_"},
	{"pkgtorrent-service.8", "pkgtorrent-service", false, ""},
	{"pkgtorrent-service.conf.5", "pkgtorrent-service", true, "PKGTORRENT_SERVICE_"},
}

// notInConf are flags a configuration page need not document as keys.
var notInConf = []string{"config", "batch"}

func TestLint(t *testing.T) {
	var lint func(file string) *exec.Cmd
	if p, err := exec.LookPath("mandoc"); err == nil {
		lint = func(file string) *exec.Cmd { return exec.Command(p, "-T", "lint", "-W", "warning", file) }
	} else if p, err := exec.LookPath("groff"); err == nil {
		lint = func(file string) *exec.Cmd { return exec.Command(p, "-man", "-ww", "-z", file) }
	} else {
		t.Skip("neither mandoc nor groff is installed")
	}
	for _, pg := range pages {
		t.Run(pg.file, func(t *testing.T) {
			cmd := lint(pg.file)
			out, err := cmd.CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
			}
		})
	}
}

func TestPagesAreComplete(t *testing.T) {
	for _, pg := range pages {
		text := readPage(t, pg.file)
		for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXAMPLES", "SEE ALSO"} {
			if !hasSection(text, sec) {
				t.Errorf("%s: no section %s", pg.file, sec)
			}
		}
		if pg.conf {
			if !hasSection(text, "KEYS") || !hasSection(text, "ENVIRONMENT") {
				t.Errorf("%s: want sections KEYS and ENVIRONMENT", pg.file)
			}
		} else if !hasSection(text, "OPTIONS") || !hasSection(text, "EXIT STATUS") {
			t.Errorf("%s: want sections OPTIONS and EXIT STATUS", pg.file)
		}
	}
}

// TestFlagsDocumented checks every flag the commands print with --help
// against the pages: each flag is an item "--name" in the OPTIONS of its
// command page, and (but for notInConf) an item "name" in the KEYS of its
// configuration page with its environment variable mentioned; and every item
// there is a real flag.
func TestFlagsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	flags := map[string][]string{}
	for _, cmd := range []string{"pkgtorrent-get", "pkgtorrent-service"} {
		flags[cmd] = helpFlags(t, cmd)
	}
	for _, pg := range pages {
		t.Run(pg.file, func(t *testing.T) {
			want := flags[pg.cmd]
			text := readPage(t, pg.file)
			// An item is the tag line after .TP.
			sec, itemRE := "OPTIONS", regexp.MustCompile(`(?m)^\.TP\n\.B[IR]? --([a-z0-9][a-z0-9-]*)(?:\s|$)`)
			if pg.conf {
				sec, itemRE = "KEYS", regexp.MustCompile(`(?m)^\.TP\n\.B[IR]? ([a-z0-9][a-z0-9-]*)(?:\s|$)`)
			}
			var items []string
			for _, m := range itemRE.FindAllStringSubmatch(section(text, sec), -1) {
				items = append(items, m[1])
			}
			for _, f := range want {
				if pg.conf && slices.Contains(notInConf, f) {
					continue
				}
				if !slices.Contains(items, f) {
					t.Errorf("flag %q is not an item of %s", f, sec)
				}
				if !pg.conf && !containsWord(text, "--"+f) {
					t.Errorf("flag --%s is not mentioned", f)
				}
				if pg.conf {
					env := pg.envPrefix + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
					if !containsWord(text, env) {
						t.Errorf("environment variable %s of key %q is not mentioned", env, f)
					}
				}
			}
			for _, it := range items {
				if it != "help" && !slices.Contains(want, it) {
					t.Errorf("%s documents %q, which %s does not have", sec, it, pg.cmd)
				}
			}
		})
	}
}

// helpFlags runs "go run ../cmd/CMD --help" and returns the flag names.
func helpFlags(t *testing.T, cmd string) []string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, goTool, "run", "../cmd/"+cmd, "--help")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) < 5 || !slices.Contains(names, "config") {
		t.Fatalf("%s --help: found only flags %q in\n%s", cmd, names, out)
	}
	return names
}

// readPage returns a page with roff's "\-" written as "-".
func readPage(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), `\-`, "-")
}

func hasSection(text, name string) bool {
	return regexp.MustCompile(`(?m)^\.SH "?` + regexp.QuoteMeta(name) + `"?\s*$`).MatchString(text)
}

// section returns the text of section name, up to the next .SH.
func section(text, name string) string {
	loc := regexp.MustCompile(`(?m)^\.SH "?` + regexp.QuoteMeta(name) + `"?\s*$`).FindStringIndex(text)
	if loc == nil {
		return ""
	}
	rest := text[loc[1]:]
	if i := strings.Index(rest, "\n.SH "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// containsWord reports whether w occurs in text not as part of a longer
// name (letters, digits, '-' and '_').
func containsWord(text, w string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(w) + `($|[^A-Za-z0-9_-])`).MatchString(text)
}
