package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/safedelete/uploads/internal/config"
)

// helpWidth is where help text wraps.
const helpWidth = 100

// usage writes how to call cmd: its commands, its own flags, and the
// settings it takes, each with its environment variable.
func usage(cmd *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:\n")
	// A command that groups others only shows its help when run.
	if cmd.Runnable() && (!cmd.HasAvailableSubCommands() || !cmd.HasParent()) {
		fmt.Fprintf(&b, "  %s\n", cmd.UseLine())
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "  %s [command]\n", cmd.CommandPath())
	}
	if cmd.HasAvailableSubCommands() {
		b.WriteString("\nCommands:\n")
		width := 0
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				width = max(width, len(sub.Name()))
			}
		}
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "  %-*s  %s\n", width, sub.Name(), sub.Short)
			}
		}
	}
	var own, settings []*pflag.Flag
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		switch {
		case f.Hidden:
		case f.Annotations[config.EnvAnnotation] != nil:
			settings = append(settings, f)
		default:
			own = append(own, f)
		}
	})
	column := 0
	for _, f := range append(own, settings...) {
		column = max(column, len(flagName(f)))
	}
	column += 2
	if len(own) > 0 {
		b.WriteString("\nFlags:\n")
		writeFlags(&b, own, column)
	}
	if len(settings) > 0 {
		b.WriteString("\nSettings (each a flag or an environment variable; a flag wins):\n")
		writeFlags(&b, settings, column)
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nUse \"%s [command] --help\" for more about a command.\n", cmd.CommandPath())
	}
	_, err := fmt.Fprint(cmd.OutOrStderr(), b.String())
	return err
}

// flagName is how a flag is called: "  -h, --help" or "      --addr string".
func flagName(f *pflag.Flag) string {
	name := "      --" + f.Name
	if f.Shorthand != "" {
		name = "  -" + f.Shorthand + ", --" + f.Name
	}
	if t := f.Value.Type(); t != "bool" {
		name += " " + t
	}
	return name
}

// writeFlags writes one flag a line, its text from column on, wrapped.
func writeFlags(b *strings.Builder, flags []*pflag.Flag, column int) {
	for _, f := range flags {
		words := strings.Fields(f.Usage)
		var notes []string
		if env := f.Annotations[config.EnvAnnotation]; env != nil {
			notes = append(notes, "env "+env[0])
		}
		if !zeroDefault(f) {
			def := f.DefValue
			if f.Value.Type() == "string" {
				def = fmt.Sprintf("%q", def)
			}
			notes = append(notes, "default "+def)
		}
		if r := f.Annotations[config.RangeAnnotation]; r != nil {
			notes = append(notes, r[0])
		}
		if len(notes) > 0 { // kept on one line, so that a name is never cut
			words = append(words, "("+strings.Join(notes, ", ")+")")
		}
		name := flagName(f)
		b.WriteString(name)
		b.WriteString(strings.Repeat(" ", column-len(name)))
		for i, line := range wrap(words, max(helpWidth-column, 30)) {
			if i > 0 {
				b.WriteString(strings.Repeat(" ", column))
			}
			b.WriteString(line)
			b.WriteString("\n")
		}
	}
}

func zeroDefault(f *pflag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return true
	}
	return false
}

// wrap joins words into lines of at most width columns (a longer word
// has a line of its own).
func wrap(words []string, width int) []string {
	var lines []string
	line := ""
	for _, word := range words {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
