// Package traffic keeps the books of a test producer and consumer: each
// process appends what it did (every confirmed message id, every received
// one) to a ledger file, and Compare turns the ledgers into the figures a
// migration or fault test asserts on: published, consumed, lost,
// duplicated, the longest publish stall and the longest consume gap.
//
// Ledgers are plain text, one event per line (`<unix nanoseconds> <kind>
// <id>`), written with one write(2) per event and no buffering, so a
// process that is killed loses nothing it had recorded. Reopening a ledger
// appends to it: a restarted process keeps its history.
package traffic

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is what a ledger line records.
type Kind string

// Event kinds.
const (
	Start     Kind = "start"     // a process opened the ledger; ID is its pid
	Stop      Kind = "stop"      // it closed it
	Confirmed Kind = "confirmed" // the broker confirmed a published message
	Received  Kind = "received"  // a consumer received (and then acked) a message
)

// Event is one line of a ledger.
type Event struct {
	At   time.Time
	Kind Kind
	ID   string
}

// Ledger appends events to a file. It is safe for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// Open opens (creating or appending to) the ledger at path and records a
// start event.
func Open(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	l := &Ledger{f: f, path: path}
	if err := l.add(Start, strconv.Itoa(os.Getpid())); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// Confirmed records that the broker confirmed message id.
func (l *Ledger) Confirmed(id string) error { return l.add(Confirmed, id) }

// Received records that message id was received.
func (l *Ledger) Received(id string) error { return l.add(Received, id) }

// Close records a stop event and closes the file.
func (l *Ledger) Close() error {
	err := l.add(Stop, strconv.Itoa(os.Getpid()))
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(err, l.f.Close())
}

func (l *Ledger) add(k Kind, id string) error {
	if id == "" || strings.ContainsAny(id, " \t\r\n") {
		return fmt.Errorf("ledger %s: id %q: want a non-empty id without blanks", l.path, id)
	}
	line := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + string(k) + " " + id + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteString(line); err != nil {
		return fmt.Errorf("write ledger %s: %w", l.path, err)
	}
	return nil
}

// Read returns the events of ledger files, in file order. A missing file
// is an error: a process that never started is worth knowing about.
func Read(paths ...string) ([]Event, error) {
	var out []Event
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 {
				continue
			}
			if len(fields) != 3 {
				f.Close()
				return nil, fmt.Errorf("ledger %s line %d: %q: want `<unix nanoseconds> <kind> <id>`", p, n, sc.Text())
			}
			ns, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("ledger %s line %d: bad time %q", p, n, fields[0])
			}
			out = append(out, Event{At: time.Unix(0, ns), Kind: Kind(fields[1]), ID: fields[2]})
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read ledger %s: %w", p, err)
		}
	}
	return out, nil
}
