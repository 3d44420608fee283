package appclient

import (
	"errors"
	"fmt"
)

// ErrUnroutable is matched (errors.Is) by the error Publish returns for a
// message the broker returned as unroutable: no queue is bound for its
// exchange and routing key. The error is a *ReturnedError.
var ErrUnroutable = errors.New("appclient: message unroutable")

// ErrNacked is returned by Publish when the broker refused a message
// (basic.nack) more often than PublisherOptions.NackRetries allows, e.g. a
// queue that stays at its length limit with overflow reject-publish.
var ErrNacked = errors.New("appclient: the broker refused the message (basic.nack)")

// ErrUnconfirmed is returned, with the context's error, by Publish when its
// context ends after the message went out but before the broker confirmed
// it: the message may or may not be in a queue.
var ErrUnconfirmed = errors.New("appclient: published but not confirmed")

// ReturnedError describes a message the broker returned (basic.return).
type ReturnedError struct {
	Exchange, RoutingKey, MessageID string
	Code                            uint16
	Text                            string
}

func (e *ReturnedError) Error() string {
	ex := e.Exchange
	if ex == "" {
		ex = "(default)"
	}
	return fmt.Sprintf("appclient: message %s to exchange %s with routing key %q came back unroutable (%d %s): no queue is bound for it; "+
		"declare and bind the queue, or publish with AllowUnroutable if dropping it is fine", e.MessageID, ex, e.RoutingKey, e.Code, e.Text)
}

// Is makes errors.Is(err, ErrUnroutable) true.
func (e *ReturnedError) Is(target error) bool { return target == ErrUnroutable }

// permanentError marks a handler error that retrying will not fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps a handler's error to say that no retry can succeed (a
// malformed message, say): the consumer dead-letters the message at once
// instead of redelivering it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
