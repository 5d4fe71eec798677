package history

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Recorder appends events to a history as they happen. Each event is
// written through to the underlying writer at once, so a harness that is
// killed still leaves every event it recorded.
type Recorder struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	err   error
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: w, start: time.Now()}
}

// Since returns the test clock: nanoseconds since the recorder started.
func (r *Recorder) Since() int64 {
	return int64(time.Since(r.start))
}

// Start returns the wall-clock time at which the test clock started.
func (r *Recorder) Start() time.Time { return r.start }

// Record stamps e with the test clock, appends it and returns it.
func (r *Recorder) Record(e Event) Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Stamping under the lock keeps the file ordered by time.
	e.Time = r.Since()
	if r.err != nil {
		return e
	}
	line, err := e.MarshalLine()
	if err == nil {
		_, err = r.w.Write(line)
	}
	if err != nil {
		r.err = fmt.Errorf("recording history: %w", err)
	}
	return e
}

// Err returns the first write error, if any. After an error the recorder
// keeps stamping events but writes nothing more.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Beside returns a recorder of another file on r's clock, so that the
// times of both files compare.
func (r *Recorder) Beside(w io.Writer) *Recorder {
	return &Recorder{w: w, start: r.start}
}
