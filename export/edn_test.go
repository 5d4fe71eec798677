package export

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A reader of the EDN that Jepsen writes: maps, vectors, strings,
// keywords, integers, nil, true and false, commas as whitespace. Enough
// to read back what the export wrote, and no more.

// keywordV is an EDN keyword, with its colon: ":type".
type keywordV string

type ednReader struct {
	s   string
	pos int
}

// readEDN reads every value of s.
func readEDN(s string) ([]any, error) {
	r := &ednReader{s: s}
	var out []any
	for {
		r.space()
		if r.pos == len(r.s) {
			return out, nil
		}
		v, err := r.value()
		if err != nil {
			return nil, fmt.Errorf("at byte %d: %w", r.pos, err)
		}
		out = append(out, v)
	}
}

func (r *ednReader) space() {
	for r.pos < len(r.s) && strings.IndexByte(" \t\r\n,", r.s[r.pos]) >= 0 {
		r.pos++
	}
}

func (r *ednReader) value() (any, error) {
	r.space()
	if r.pos == len(r.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := r.s[r.pos]; {
	case c == '{':
		r.pos++
		items, err := r.until('}')
		if err != nil {
			return nil, err
		}
		if len(items)%2 != 0 {
			return nil, fmt.Errorf("map with an odd number of forms")
		}
		m := map[any]any{}
		for i := 0; i < len(items); i += 2 {
			if _, dup := m[items[i]]; dup {
				return nil, fmt.Errorf("duplicate key %v", items[i])
			}
			m[items[i]] = items[i+1]
		}
		return m, nil
	case c == '[':
		r.pos++
		return r.until(']')
	case c == '"':
		return r.str()
	case c == ':':
		return keywordV(r.token()), nil
	case c == '-' || c >= '0' && c <= '9':
		t := r.token()
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", t)
		}
		return n, nil
	default:
		switch t := r.token(); t {
		case "nil":
			return nil, nil
		case "true", "false":
			return t == "true", nil
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
	}
}

func (r *ednReader) until(end byte) ([]any, error) {
	items := []any{}
	for {
		r.space()
		if r.pos < len(r.s) && r.s[r.pos] == end {
			r.pos++
			return items, nil
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
}

func (r *ednReader) token() string {
	start := r.pos
	for r.pos < len(r.s) && strings.IndexByte(" \t\r\n,{}[]\"", r.s[r.pos]) < 0 {
		r.pos++
	}
	return r.s[start:r.pos]
}

func (r *ednReader) str() (string, error) {
	r.pos++ // the opening quote
	var b strings.Builder
	for r.pos < len(r.s) {
		c := r.s[r.pos]
		switch {
		case c == '"':
			r.pos++
			return b.String(), nil
		case c == '\\' && r.pos+1 < len(r.s):
			r.pos += 2
			switch e := r.s[r.pos-1]; e {
			case '"', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'u':
				if r.pos+4 > len(r.s) {
					return "", fmt.Errorf("short \\u escape")
				}
				n, err := strconv.ParseUint(r.s[r.pos:r.pos+4], 16, 16)
				if err != nil {
					return "", fmt.Errorf("bad \\u escape %q", r.s[r.pos:r.pos+4])
				}
				b.WriteRune(rune(n))
				r.pos += 4
			default:
				return "", fmt.Errorf("unknown escape \\%c", e)
			}
		default:
			if c < 0x20 {
				return "", fmt.Errorf("raw control character %#x in a string", c)
			}
			ru, n := utf8.DecodeRuneInString(r.s[r.pos:])
			b.WriteRune(ru)
			r.pos += n
		}
	}
	return "", fmt.Errorf("unterminated string")
}
