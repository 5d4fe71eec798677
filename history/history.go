// Package history is the operation record shared by workloads, nemesis,
// checkers and reports.
//
// It follows Jepsen's event model: every operation is an invoke event
// followed, on the same process, by exactly one completion: ok (it
// happened), fail (it certainly did not happen) or info (unknown: it may
// have happened, at any time after its invocation). A process that got an
// info never issues another operation; its worker continues under a new
// process id.
package history

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is the kind of an event.
type Type string

const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	Fail   Type = "fail"
	Info   Type = "info"
)

// Process identifies who issued an event: a worker's current process id,
// or the nemesis.
type Process int

// Nemesis is the process of every fault event.
const Nemesis Process = -1

// MarshalJSON writes the nemesis as "nemesis", as Jepsen does, and workers
// as plain numbers.
func (p Process) MarshalJSON() ([]byte, error) {
	if p == Nemesis {
		return []byte(`"nemesis"`), nil
	}
	return strconv.AppendInt(nil, int64(p), 10), nil
}

// UnmarshalJSON accepts what MarshalJSON writes.
func (p *Process) UnmarshalJSON(b []byte) error {
	if string(b) == `"nemesis"` {
		*p = Nemesis
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("process %s: want a non-negative number or \"nemesis\"", b)
	}
	*p = Process(n)
	return nil
}

// Operation names of the register workload (Jepsen's), and the F of the
// nemesis's events.
const (
	Read  = "read"
	Write = "write"
	CAS   = "cas"

	// Fault events carry the fault's name in Fault and use these as F.
	Start = "start"
	Stop  = "stop"
	// Recover marks when the cluster was whole again after a heal (or, with
	// Error set, that it was not in time).
	Recover = "recover"
	// Final is the Fault of the final phase's recover event: after the
	// time limit every fault is healed and the cluster must come back whole.
	Final = "final"
	// Leader records who leads, as the members' status calls report it,
	// each time that changes; Nodes is empty while no member knows a leader.
	Leader = "leader"
	// HashKV records, after the final phase, one member's hash of its keys
	// at Revision, with its CompactRevision and Hash (or, with Error set,
	// that it could not be asked); Member names it.
	HashKV = "hashkv"
)

// Event is one line of history.jsonl.
//
// Arguments are set on the invoke event; results on the completion. Time
// is nanoseconds since the start of the test on a monotonic clock.
type Event struct {
	Type    Type    `json:"type"`
	Process Process `json:"process"`
	F       string  `json:"f"`
	Time    int64   `json:"time"`

	// Arguments and results of client operations.
	Key string `json:"key,omitempty"`
	// Value is the value written (invoke of write and cas) or read (ok of
	// read; empty when the key does not exist).
	Value string `json:"value,omitempty"`
	// Expect is the value a cas compares against.
	Expect string `json:"expect,omitempty"`
	// Revision is the store revision in the response header.
	Revision int64  `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
	// Member names the member that served the operation, when known.
	Member string `json:"member,omitempty"`

	// FaultInfo holds what only the nemesis's events carry, and Txn what
	// only a transaction's do. They are pointers because most events of a
	// long history are watch responses and reads, and inline these fields
	// took 40% of every held event. Their fields read as the event's own
	// (e.Fault, e.Then) and are in the event's JSON object. Reading one
	// through a nil pointer panics, so Decode and Ops point every event
	// without them at shared zero values (Shared); code that makes an
	// event with these fields sets the pointer.
	*FaultInfo
	*Txn

	// Watch, range and lease operations (watch, kubernetes and lease
	// workloads).

	// RangeEnd ends the range [Key, RangeEnd) of a watch or a read; empty
	// means the single key Key.
	RangeEnd string `json:"range_end,omitempty"`
	// WatchID names one logical watcher (it keeps its name across reopens).
	WatchID string `json:"watch_id,omitempty"`
	// StartRevision is the revision a watch session was opened at; 0 means
	// "from now" (the created notification's header revision + 1).
	StartRevision int64 `json:"start_revision,omitempty"`
	// WatchEvents are the events of one watch response, in the order
	// delivered.
	WatchEvents []WatchEvent `json:"watch_events,omitempty"`
	// CompactRevision is set when a watch was cancelled because its
	// revision was compacted, and on a hashkv event to the member's
	// compaction revision.
	CompactRevision int64 `json:"compact_revision,omitempty"`
	// KVs are the key-values a range read returned, in key order.
	KVs []KV `json:"kvs,omitempty"`
	// Limit is the page size of a paginated range read.
	Limit int64 `json:"limit,omitempty"`
	// ExpectRevision is the mod_revision a conditional write compares
	// against (0: the key must not exist).
	ExpectRevision int64 `json:"expect_revision,omitempty"`
	// Deleted is how many keys a delete removed.
	Deleted int64 `json:"deleted,omitempty"`
	// Lease is a lease ID (granted, attached to a put, kept alive, revoked);
	// TTL its time to live in seconds (asked for on invoke, granted or
	// remaining on ok).
	Lease int64 `json:"lease,omitempty"`
	TTL   int64 `json:"ttl,omitempty"`

	// The kv workload's operations (kv-get, kv-range, kv-put, kv-delete,
	// kv-txn, kv-compact); KVs, Limit, RangeEnd, Deleted and
	// CompactRevision (the compaction's argument) are shared with the
	// fields above, and so are the flags below.

	// Count is the number of keys in the range, whatever the limit.
	Count int64 `json:"count,omitempty"`
	// Prev is the key-value a put or delete replaced, when it asked for
	// prev_kv (PrevKV) and the key existed.
	Prev *KV `json:"prev,omitempty"`
	// AtRevision asks a read for the store as it was at that revision
	// (clientv3.WithRev); 0 means the current state.
	AtRevision int64 `json:"at_revision,omitempty"`

	// The flags, of any of the operations above, are together here: each
	// alone between wider fields took a word of every held event.

	// Succeeded reports whether a completed cas or txn found its compares
	// true and wrote.
	Succeeded bool `json:"succeeded,omitempty"`
	// PrevKV and ProgressNotify are the options a watch was opened with.
	PrevKV         bool `json:"prev_kv,omitempty"`
	ProgressNotify bool `json:"progress_notify,omitempty"`
	// Progress marks a watch response that is a progress notification;
	// Created one that is the created notification. Revision is then the
	// response's header revision.
	Progress bool `json:"progress,omitempty"`
	Created  bool `json:"created,omitempty"`
	// More says a paginated range read left keys past its Limit.
	More bool `json:"more,omitempty"`
	// Serializable marks a read served from the member's local state
	// without a quorum round (clientv3.WithSerializable).
	Serializable bool `json:"serializable,omitempty"`
	// KeysOnly marks a range read that asked for keys without values.
	KeysOnly bool `json:"keys_only,omitempty"`
}

// FaultInfo is what the nemesis's events carry besides the fields every
// event has.
type FaultInfo struct {
	// Term is the Raft term of a leader event.
	Term uint64 `json:"term,omitempty"`
	// Mechanism says how a fault was made (a start event's), where there
	// is more than one way: netfilter, a userspace proxy, netem.
	Mechanism string `json:"mechanism,omitempty"`

	// Fault and Nodes describe nemesis events: which fault, which members.
	Fault string   `json:"fault,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
	// Crash, on a start event, names the members the fault crashes on
	// purpose (a failpoint that panics), so that the logs checker counts
	// their crashes as expected rather than as bugs.
	Crash []string `json:"crash,omitempty"`
	// Damaged, on a start event, names the members whose files the fault
	// damaged on purpose (a flipped bit, a cut log): their complaints about
	// damaged data are the right answer, not a finding.
	Damaged []string `json:"damaged,omitempty"`
	// Effects, on a start event, says per member what the fault did to it
	// where that varies ("dropped 12.0 KiB unsynced in 2 files"), so that
	// a power loss that dropped nothing is not mistaken for one that did.
	Effects map[string]string `json:"effects,omitempty"`
	// Hash is a member's HashKV answer (a hashkv event's).
	Hash uint32 `json:"hash,omitempty"`
}

// Txn is what a transaction carries besides the fields every event has.
type Txn struct {
	// Compares, Then and Else are a transaction's arguments; Responses
	// (on ok) are the results of the branch that ran, in order.
	Compares  []Compare `json:"compares,omitempty"`
	Then      []TxnOp   `json:"then,omitempty"`
	Else      []TxnOp   `json:"else,omitempty"`
	Responses []TxnOp   `json:"responses,omitempty"`
}

// noFault and noTxn are what an event without those fields points at, so
// that reading them gives zero values. Nothing may write through them.
var (
	noFault FaultInfo
	noTxn   Txn
)

// Shared points e's missing FaultInfo and Txn at shared zero values, so that
// reading their fields is safe; it leaves those e has alone. A history read
// from a file or paired into Ops has had it done.
func (e *Event) Shared() {
	if e.FaultInfo == nil {
		e.FaultInfo = &noFault
	}
	if e.Txn == nil {
		e.Txn = &noTxn
	}
}

// Compare is one condition of a transaction: Target of Key compared with
// Op to Value (target "value") or Number (version, create_revision,
// mod_revision).
type Compare struct {
	Key    string `json:"key"`
	Target string `json:"target"`
	Op     string `json:"op"`
	Value  string `json:"value,omitempty"`
	Number int64  `json:"number,omitempty"`
}

// TxnOp is one request of a transaction branch ("get", "put" or "delete"
// of one key) and, in Responses, its result.
type TxnOp struct {
	F       string `json:"f"`
	Key     string `json:"key"`
	Value   string `json:"value,omitempty"`
	KVs     []KV   `json:"kvs,omitempty"`
	Deleted int64  `json:"deleted,omitempty"`
}

// KV is a key-value as the store reports it.
type KV struct {
	Key            string `json:"key"`
	Value          string `json:"value,omitempty"`
	CreateRevision int64  `json:"create_revision,omitempty"`
	ModRevision    int64  `json:"mod_revision,omitempty"`
	Version        int64  `json:"version,omitempty"`
	Lease          int64  `json:"lease,omitempty"`
}

// WatchEvent is one event a watch delivered.
type WatchEvent struct {
	// Type is "put" or "delete".
	Type string `json:"type"`
	KV   KV     `json:"kv"`
	// PrevKV is the key-value before the event, when the watch asked for it
	// and the store had it.
	PrevKV *KV `json:"prev_kv,omitempty"`
}

// MarshalLine encodes e as one JSON line.
func (e Event) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
