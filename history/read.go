package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	lines, _, err := count(f)
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
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

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
// taking its operations hold at once: each line becomes an Event, every
// two lines about one Op, and the strings copy the file's bytes. It counts
// lines without decoding them, so that a history too big to hold can be
// told apart before the attempt takes the process down.
func Footprint(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lines, size, err := count(f)
	if err != nil {
		return 0, err
	}
	return lines*uint64(unsafe.Sizeof(Event{})) + lines/2*uint64(unsafe.Sizeof(Op{})) + size, nil
}

// count reads r to its end and returns its lines and bytes.
func count(r io.Reader) (lines, size uint64, err error) {
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		lines += uint64(bytes.Count(buf[:n], []byte{'\n'}))
		size += uint64(n)
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}
