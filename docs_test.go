package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/safedelete/uploads/internal/config"
)

// maxReadmeLines keeps README.md a front door: what the service is, the two
// commands, the APIs in a page, and links. Everything else lives in docs/.
const maxReadmeLines = 250

// TestReadmeIsTheFrontDoor: README.md stays short, and its "Two commands"
// section still holds the command that runs the service on embedded
// defaults and the one that runs the tests (CI runs that same command).
func TestReadmeIsTheFrontDoor(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(readme, []byte("\n")); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into docs/", n, maxReadmeLines)
	}
	_, section, found := strings.Cut(string(readme), "\n## Two commands\n")
	if !found {
		t.Fatal(`README.md has no "## Two commands" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, command := range []string{"go run .", "go test ./..."} {
		if !strings.Contains(section, "```sh\n"+command+"\n```") {
			t.Errorf("README.md's Two commands section has no sh block holding only %q", command)
		}
	}
}

// TestSettingsDocumented: every setting appears in the table of
// docs/operations.md with its default.
func TestSettingsDocumented(t *testing.T) {
	t.Parallel()
	const doc = "docs/operations.md"
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		row := "| `" + s.Env + "` | `--" + s.Flag + "` |"
		i := bytes.Index(text, []byte(row))
		if i < 0 {
			t.Errorf("%s has no row starting %q", doc, row)
			continue
		}
		line, _, _ := bytes.Cut(text[i+len(row):], []byte("\n"))
		if s.Default != "" && !bytes.HasPrefix(bytes.TrimSpace(line), []byte("`"+s.Default+"`")) {
			t.Errorf("%s's row of %s does not give its default `%s`: %s", doc, s.Env, s.Default, line)
		}
	}
}

// TestDocsLinksResolve: every relative link in README.md and docs/ names a
// file that exists and, with a #fragment into a Markdown file, a heading
// that file has (as GitHub makes anchors of headings).
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, file := range append([]string{"README.md"}, docs...) {
		for _, m := range link.FindAllStringSubmatch(proseOf(t, file), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, fragment, _ := strings.Cut(target, "#")
			if path == "" {
				path = file
			} else {
				path = filepath.Join(filepath.Dir(file), path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s: %v", file, target, err)
				continue
			}
			if fragment != "" && strings.HasSuffix(path, ".md") && !anchorsOf(t, path)[fragment] {
				t.Errorf("%s links to %s: %s has no heading whose anchor is #%s", file, target, path, fragment)
			}
		}
	}
}

// proseOf is a Markdown file without its fenced code blocks.
func proseOf(t *testing.T, file string) string {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var prose strings.Builder
	inCode := false
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			prose.WriteString(line + "\n")
		}
	}
	return prose.String()
}

// anchorsOf is the set of anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation dropped, spaces made hyphens, and -1, -2 …
// after a repeated one.
func anchorsOf(t *testing.T, file string) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	for _, line := range strings.Split(proseOf(t, file), "\n") {
		heading := strings.TrimLeft(line, "#")
		if heading == line || !strings.HasPrefix(heading, " ") {
			continue
		}
		anchor := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(heading))
		unique := anchor
		for i := 1; anchors[unique]; i++ {
			unique = anchor + "-" + strconv.Itoa(i)
		}
		anchors[unique] = true
	}
	return anchors
}
