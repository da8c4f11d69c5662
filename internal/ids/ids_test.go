package ids

import "testing"

func TestTrim(t *testing.T) {
	t.Parallel()
	id := NewUpload()
	for in, want := range map[string]string{
		id:                  id,
		" \t" + id + "\r\n": id,
		"\v\f" + id:         id,
		id + "\u00a0":       id + "\u00a0", // no-break space
		"\u00a0" + id:       "\u00a0" + id,
		id + "\u0085":       id + "\u0085", // next line
		id + "\u2003":       id + "\u2003", // em space
		id + "\u3000":       id + "\u3000", // ideographic space
		"   ":               "",
		"\u00a0":            "\u00a0",
	} {
		if got := Trim(in); got != want {
			t.Errorf("Trim(%q) = %q, want %q", in, got, want)
		}
	}
}
