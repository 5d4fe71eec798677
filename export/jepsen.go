package export

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/faultline/faultline/history"
)

// Mismatch is the :error of a cas that found another value. faultline
// records it as ok with succeeded false; for Jepsen's cas register it
// certainly did not write, which is :fail.
const Mismatch = ":mismatch"

// Jepsen writes events as a Jepsen history: one EDN map per line, as
// Jepsen's store writes history.edn, in the order recorded.
//
// Keys are independent registers, so every :value is a jepsen.independent
// tuple [key value]: a read's value (nil for none, also on its invoke), a
// write's, or a cas's [expected new] (expected nil: the key must not
// exist). A completion carries its invoke's
// value, as in Jepsen, except a read's ok, which carries what it read.
// :time is nanoseconds since the test began and :index the position in
// the history. What Jepsen has no word for is kept under faultline's own
// keys, which Jepsen's checkers ignore: :error (the text), :member (who
// answered), :revision; the nemesis's events keep :fault, :nodes, :term,
// :mechanism, :effects, :crash, :damaged, :member, :revision and :hash.
func Jepsen(w io.Writer, events []history.Event) error {
	if err := registerOnly(events); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	invoked := map[history.Process]history.Event{}
	var m ednMap
	for i, e := range events {
		m.reset()
		if e.Process == history.Nemesis {
			m.add(":type", ":"+string(e.Type))
			m.add(":f", keyword(e.F))
			m.add(":process", ":nemesis")
			nemesisFields(&m, e)
		} else {
			in := e
			if e.Type == history.Invoke {
				invoked[e.Process] = e
			} else {
				in = invoked[e.Process]
				delete(invoked, e.Process)
			}
			typ := ":" + string(e.Type)
			if e.Type == history.OK && e.F == history.CAS && !e.Succeeded {
				typ = ":fail"
			}
			m.add(":type", typ)
			m.add(":f", keyword(e.F))
			m.add(":value", registerValue(e, in))
			m.add(":process", strconv.Itoa(int(e.Process)))
			switch {
			case e.Error != "":
				m.add(":error", ednString(e.Error))
			case typ == ":fail" && e.Type == history.OK:
				m.add(":error", Mismatch)
			}
			if e.Revision != 0 {
				m.add(":revision", strconv.FormatInt(e.Revision, 10))
			}
			if e.Member != "" {
				m.add(":member", ednString(e.Member))
			}
		}
		m.add(":time", strconv.FormatInt(e.Time, 10))
		m.add(":index", strconv.Itoa(i))
		bw.WriteString(m.String())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// registerValue is the [key value] tuple of e, whose invocation is in.
func registerValue(e, in history.Event) string {
	var v string
	switch {
	case e.F == history.Read && e.Type == history.OK:
		v = maybeString(e.Value)
	case e.F == history.Read:
		v = "nil"
	case e.F == history.CAS:
		v = "[" + maybeString(in.Expect) + " " + ednString(in.Value) + "]"
	default:
		v = ednString(in.Value)
	}
	return "[" + ednString(in.Key) + " " + v + "]"
}

func nemesisFields(m *ednMap, e history.Event) {
	if e.Fault != "" {
		m.add(":fault", ednString(e.Fault))
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{":nodes", e.Nodes}, {":crash", e.Crash}, {":damaged", e.Damaged}} {
		if len(l.list) > 0 {
			m.add(l.key, ednStrings(l.list))
		}
	}
	if e.Mechanism != "" {
		m.add(":mechanism", ednString(e.Mechanism))
	}
	if len(e.Effects) > 0 {
		var b strings.Builder
		b.WriteByte('{')
		for i, n := range slices.Sorted(maps.Keys(e.Effects)) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ednString(n) + " " + ednString(e.Effects[n]))
		}
		b.WriteByte('}')
		m.add(":effects", b.String())
	}
	if e.Term != 0 {
		m.add(":term", strconv.FormatUint(e.Term, 10))
	}
	if e.Member != "" {
		m.add(":member", ednString(e.Member))
	}
	if e.Revision != 0 {
		m.add(":revision", strconv.FormatInt(e.Revision, 10))
	}
	if e.F == history.HashKV {
		m.add(":hash", strconv.FormatUint(uint64(e.Hash), 10))
	}
	if e.Error != "" {
		m.add(":error", ednString(e.Error))
	}
}

// ednStrings is a vector of strings.
func ednStrings(list []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ednString(s))
	}
	b.WriteByte(']')
	return b.String()
}

// ednMap builds one map, its keys in the order added.
type ednMap struct{ b strings.Builder }

func (m *ednMap) reset() { m.b.Reset() }

func (m *ednMap) add(key, value string) {
	if m.b.Len() == 0 {
		m.b.WriteByte('{')
	} else {
		m.b.WriteString(", ")
	}
	m.b.WriteString(key)
	m.b.WriteByte(' ')
	m.b.WriteString(value)
}

func (m *ednMap) String() string { return m.b.String() + "}" }

// keyword makes an operation name an EDN keyword: faultline's names are
// lower-case words and dashes, which keywords allow as they are.
func keyword(name string) string { return ":" + name }

// maybeString is s, or nil when s is empty: faultline records a missing
// value as "".
func maybeString(s string) string {
	if s == "" {
		return "nil"
	}
	return ednString(s)
}

// ednString quotes s as an EDN string. EDN knows the escapes \" \\ \n \t
// \r and \uXXXX; everything else valid in UTF-8 goes as it is. A byte
// that is not UTF-8 cannot be said in EDN and becomes U+FFFD.
func ednString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
