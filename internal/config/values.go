package config

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/safedelete/uploads/internal/durationtext"
)

// value is a setting's flag value. Set's errors say the form expected,
// without the value: ApplyEnv and the command line put the setting's name
// and the value in front ("RATE_LIMIT=abc: want a whole number").
type value interface {
	String() string
	Set(string) error
	Type() string
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) Type() string       { return "string" }

type boolValue bool

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) Type() string   { return "bool" }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}

// intValue is a whole number within its limits.
type intValue struct {
	p   *int
	lim limits[int]
}

func (v *intValue) String() string { return strconv.Itoa(*v.p) }
func (v *intValue) Type() string   { return "int" }
func (v *intValue) Range() string  { return v.lim.text(strconv.Itoa) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || !v.lim.hold(n) {
		return errors.New("want a whole number " + v.lim.phrase(v.Range()))
	}
	*v.p = n
	return nil
}

// bytesValue is a size in bytes within its limits.
type bytesValue struct {
	p   *int64
	lim limits[int64]
}

func (v *bytesValue) String() string { return strconv.FormatInt(*v.p, 10) }
func (v *bytesValue) Type() string   { return "bytes" }
func (v *bytesValue) Range() string  { return v.lim.text(sizeText) }
func (v *bytesValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !v.lim.hold(n) {
		return errors.New("want a whole number of bytes " + v.lim.phrase(v.Range()))
	}
	*v.p = n
	return nil
}

// durationValue is a duration within its limits.
type durationValue struct {
	p   *time.Duration
	lim limits[time.Duration]
}

func (v *durationValue) String() string { return v.p.String() }
func (v *durationValue) Type() string   { return "duration" }
func (v *durationValue) Range() string  { return v.lim.text(durationtext.Short) }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration " + v.lim.phrase(v.Range()) + ", such as 30s, 5m or 1h")
	}
	if !v.lim.hold(d) {
		return errors.New("want a duration " + v.lim.phrase(v.Range()))
	}
	*v.p = d
	return nil
}

// choiceValue is one of a few words.
type choiceValue struct {
	p       *string
	choices []string
}

func (v *choiceValue) String() string { return *v.p }
func (v *choiceValue) Type() string   { return "string" }
func (v *choiceValue) Set(s string) error {
	if i := slices.IndexFunc(v.choices, func(c string) bool { return strings.EqualFold(c, s) }); i >= 0 {
		*v.p = v.choices[i]
		return nil
	}
	return errors.New("want " + orList(v.choices))
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// limits are the values a number setting may take, both ends included; a
// value outside them is refused when the setting is read, before anything
// is opened. open means no upper end.
type limits[T ~int | ~int64] struct {
	min, max T
	open     bool
}

// between is from min to max.
func between[T ~int | ~int64](min, max T) limits[T] { return limits[T]{min: min, max: max} }

// atLeast is min or more.
func atLeast[T ~int | ~int64](min T) limits[T] { return limits[T]{min: min, open: true} }

func (l limits[T]) hold(v T) bool { return v >= l.min && (l.open || v <= l.max) }

// text says the limits: "from 10ms to 1h", "0 or more".
func (l limits[T]) text(format func(T) string) string {
	if l.open {
		return format(l.min) + " or more"
	}
	return "from " + format(l.min) + " to " + format(l.max)
}

// phrase is text put after a noun: "a duration of 0s or more".
func (l limits[T]) phrase(text string) string {
	if l.open {
		return "of " + text
	}
	return text
}

// sizeText is n bytes, with its size in binary units when it has one:
// "5242880 (5 MiB)".
func sizeText(n int64) string {
	s := strconv.FormatInt(n, 10)
	for _, unit := range []struct {
		name  string
		bytes int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= unit.bytes && n%unit.bytes == 0 {
			return s + " (" + strconv.FormatInt(n/unit.bytes, 10) + " " + unit.name + ")"
		}
	}
	return s
}
