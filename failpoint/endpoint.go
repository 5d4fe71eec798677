package failpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoint is a process's gofail HTTP endpoint (GOFAIL_HTTP), through
// which its failpoints are listed, armed, counted and disarmed, as gofail
// v0.2.0 serves them.
type Endpoint struct {
	// URL is the endpoint's base, e.g. http://10.213.7.11:2382.
	URL string
}

// requestTimeout bounds one request: gofail serves requests one at a time,
// and etcd's maintainers saw a one-second limit run out while a sleep term
// held the process (etcd #16910).
const requestTimeout = 5 * time.Second

// ErrUnknown is the answer for a name the process does not declare.
var ErrUnknown = errors.New("no such failpoint in this build")

// List returns every failpoint the process declares, with the term each
// is armed with ("" when it is not).
func (e Endpoint) List(ctx context.Context) (map[string]string, error) {
	code, body, err := e.do(ctx, http.MethodGet, "/", "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, e.unexpected("GET /", code, body)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(body, "\n") {
		if name, term, ok := strings.Cut(line, "="); ok {
			out[name] = term
		}
	}
	return out, nil
}

// Arm sets name's term (gofail's syntax: panic, 1*panic, sleep("1s"),
// return("text"), …). Its hit count starts again from zero.
func (e Endpoint) Arm(ctx context.Context, name, term string) error {
	code, body, err := e.do(ctx, http.MethodPut, "/"+name, term)
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return e.unexpected("PUT /"+name+" "+term, code, body)
	}
	return nil
}

// Count is how many times name's term has run since it was armed; a
// failpoint not armed is ErrUnknown too, since gofail does not tell the two
// apart by code alone.
func (e Endpoint) Count(ctx context.Context, name string) (int, error) {
	code, body, err := e.do(ctx, http.MethodGet, "/"+name+"/count", "")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		if code == http.StatusNotFound || code == http.StatusInternalServerError {
			return 0, fmt.Errorf("%s: %w (or not armed)", name, ErrUnknown)
		}
		return 0, e.unexpected("GET /"+name+"/count", code, body)
	}
	n, err := strconv.Atoi(strings.TrimSpace(body))
	if err != nil {
		return 0, fmt.Errorf("gofail at %s counted %s as %q, not a number", e.URL, name, body)
	}
	return n, nil
}

// Disarm turns name off. One already off is not an error: gofail answers
// 400 for it, as it does for an unknown name.
func (e Endpoint) Disarm(ctx context.Context, name string) error {
	code, body, err := e.do(ctx, http.MethodDelete, "/"+name, "")
	if err != nil {
		return err
	}
	if code != http.StatusNoContent && code != http.StatusBadRequest {
		return e.unexpected("DELETE /"+name, code, body)
	}
	return nil
}

func (e Endpoint) unexpected(req string, code int, body string) error {
	return fmt.Errorf("gofail at %s answered %s with %d %s", e.URL, req, code, strings.TrimSpace(body))
}

func (e Endpoint) do(ctx context.Context, method, path, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
