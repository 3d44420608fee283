package loadcheck

import "errors"

// Error classes, for errors.Is: the CLI maps each to its exit code.
var (
	// ErrBadOptions: an option is out of range or missing. Nothing was
	// created on either broker.
	ErrBadOptions = errors.New("bad load check options")
	// ErrPreflight: a broker cannot be used (the vhost is missing, the
	// login lacks permissions). Nothing was created.
	ErrPreflight = errors.New("load check preflight failed")
	// ErrLiveClients: other clients are connected to the source's vhost,
	// and Options.AllowLive is not set. Nothing was created.
	ErrLiveClients = errors.New("clients are attached to the source")
)
