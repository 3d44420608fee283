package shovel

import "errors"

// The drain's error classes. Every error Drain, CheckLive and Abort return
// wraps one of them (or broker.ErrSameBroker, ErrBadOptions), so callers
// tell them apart with errors.Is; `warren` maps each to an exit code.
var (
	// ErrLiveClients: clients other than warren are attached to the source
	// (or consumers to a target queue) and AllowLive is off. Nothing moved.
	ErrLiveClients = errors.New("clients are still attached to the source")

	// ErrNoDestination: a source queue with messages has no queue of the
	// same name on the target (import the definitions first). Nothing
	// moved.
	ErrNoDestination = errors.New("a target queue is missing")

	// ErrTargetLimit: a destination queue's limits (length, bytes, TTL)
	// would drop or refuse messages. Nothing moved.
	ErrTargetLimit = errors.New("a target queue's limits would lose messages")

	// ErrNotConserved: messages are missing: the target and the source
	// together hold fewer than the source held before the drain.
	ErrNotConserved = errors.New("message counts not conserved")

	// ErrDrainFailed: a queue could not be finished (its shovel would not
	// run, its counts stopped moving, a broker stayed unreachable), and no
	// message is missing. Its shovel may be left running.
	ErrDrainFailed = errors.New("drain did not finish")

	// ErrInterrupted: the drain's context was cancelled (Ctrl-C, SIGTERM)
	// before every queue finished. Nothing is lost: started shovels keep
	// moving messages, and the same command run again resumes.
	ErrInterrupted = errors.New("drain interrupted")

	// ErrAbortIncomplete: Abort could not remove every shovel; its report
	// says which and why.
	ErrAbortIncomplete = errors.New("some shovels could not be removed")
)
