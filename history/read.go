package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"unsafe"
)

// ReadFile reads a history.jsonl file. It counts the lines first, so that
// a long history is decoded into one slice of the right size rather than
// grown by doubling, which holds up to twice the events at once.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := countLines(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	events, err := decode(f, make([]Event, 0, lines))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return events, nil
}

// Decode decodes one event per line. Blank lines are skipped. A torn last
// line, as a killed harness may leave, is dropped; a bad line anywhere
// else is an error naming the line.
func Decode(r io.Reader) ([]Event, error) { return decode(r, nil) }

// decode appends the events of r to events.
func decode(r io.Reader, events []Event) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var bad error
	names := interner{}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if bad != nil {
			return nil, bad
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			bad = fmt.Errorf("line %d: %w", n, err)
			continue
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		e.Shared()
		names.intern(&e)
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// interner keeps one copy of each name a long history repeats on most of
// its lines: json.Unmarshal allocates every string anew, and a history of
// millions of events would otherwise hold millions of copies of "ok",
// "watch-recv" and "n1".
type interner map[string]string

func (in interner) intern(e *Event) {
	for _, s := range []*string{(*string)(&e.Type), &e.F, &e.Member, &e.WatchID, &e.Key} {
		in.keep(s)
	}
	for i := range e.WatchEvents {
		in.keep(&e.WatchEvents[i].Type)
		in.keep(&e.WatchEvents[i].KV.Key)
	}
}

// keep points *s at the interner's copy of it.
func (in interner) keep(s *string) {
	if *s == "" {
		return
	}
	if held, ok := in[*s]; ok {
		*s = held
	} else if len(in) < maxInterned {
		in[*s] = *s
	}
}

// maxInterned bounds the names an interner keeps, for a history whose keys
// are all different.
const maxInterned = 1 << 16

func (e Event) validate() error {
	switch e.Type {
	case Invoke, OK, Fail, Info:
	default:
		return fmt.Errorf("unknown event type %q (want invoke, ok, fail or info)", e.Type)
	}
	if e.F == "" {
		return fmt.Errorf("event has no f (operation name)")
	}
	return nil
}

// Footprint estimates the bytes that reading the history file at path and
// pairing its operations hold at once. It decodes about one line in
// sampleEvery, drawn at random (a fixed stride would fall in step with
// invocations and completions, which alternate), measures what each of
// those events holds (the Event and all it points to), and scales the
// mean by the number of lines: an event of a watch response holds several
// times what one of a read does, so no one size per line fits every
// workload. It reads the file once and decodes little of it, so that a
// history too big to hold can be told apart before the attempt takes the
// process down.
func Footprint(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var lines, sampled, held uint64
	draw := rand.New(rand.NewPCG(1, 2))
	for sc.Scan() {
		lines++
		if lines > 1 && draw.IntN(sampleEvery) != 0 {
			continue
		}
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			sampled++
			held += uint64(unsafe.Sizeof(e)) + pointedAt(reflect.ValueOf(e))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if sampled == 0 {
		return 0, nil
	}
	return lines*held/sampled + lines/2*uint64(unsafe.Sizeof(Op{})), nil
}

// sampleEvery is how many lines Footprint counts for each it decodes.
const sampleEvery = 64

// pointedAt is the bytes that v's strings, slices, pointers and maps lead
// to, each allocation rounded up about as the allocator rounds it; v's own
// size is not counted.
func pointedAt(v reflect.Value) uint64 {
	switch v.Kind() {
	case reflect.String:
		return allocated(v.Len())
	case reflect.Slice:
		n := allocated(v.Cap() * int(v.Type().Elem().Size()))
		for i := range v.Len() {
			n += pointedAt(v.Index(i))
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return allocated(int(v.Type().Elem().Size())) + pointedAt(v.Elem())
	case reflect.Struct:
		var n uint64
		for i := range v.NumField() {
			n += pointedAt(v.Field(i))
		}
		return n
	case reflect.Map:
		// A map's buckets hold about twice its entries.
		n := uint64(2 * v.Len() * int(v.Type().Key().Size()+v.Type().Elem().Size()))
		for it := v.MapRange(); it.Next(); {
			n += pointedAt(it.Key()) + pointedAt(it.Value())
		}
		return n
	}
	return 0
}

// allocated is about what the allocator hands out for n bytes: its size
// classes step by 8 bytes up to 32, by 16 up to 256, and by more beyond.
func allocated(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case n <= 32:
		return uint64((n + 7) &^ 7)
	case n <= 256:
		return uint64((n + 15) &^ 15)
	}
	return uint64((n + 63) &^ 63)
}

// countLines reads r to its end and returns how many lines it holds.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 1<<20)
	lines := 0
	for {
		n, err := r.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
