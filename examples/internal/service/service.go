// Package service is what the example services (producer, consumer) share:
// their settings from the environment, and the start each of them makes:
// a ledger, a context that SIGTERM or Ctrl-C cancels, a resilient
// connection, and the queue declared.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/traffic"
)

// EnvOr is the variable k, or def when it is unset or empty.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// EnvInt is the number in the variable k, or def when it is unset.
func EnvInt(k string, def int) (int, error) {
	v := os.Getenv(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a number", k, v)
	}
	return n, nil
}

// Queue is the queue AMQP_QUEUE names (warren-demo), declared as
// AMQP_QUEUE_TYPE says: quorum (the default), classic, or passive to only
// check that it exists.
func Queue() (appclient.Queue, error) {
	name := EnvOr("AMQP_QUEUE", "warren-demo")
	switch typ := EnvOr("AMQP_QUEUE_TYPE", "quorum"); typ {
	case "quorum":
		return appclient.Queue{Name: name, Type: appclient.Quorum}, nil
	case "classic":
		return appclient.Queue{Name: name, Type: appclient.Classic}, nil
	case "passive":
		return appclient.Queue{Name: name, Passive: true}, nil
	default:
		return appclient.Queue{}, fmt.Errorf("AMQP_QUEUE_TYPE=%q: want quorum, classic or passive", typ)
	}
}

// Service is a started example service.
type Service struct {
	// Ctx ends on SIGTERM or Ctrl-C, or when Stop is called.
	Ctx    context.Context
	Stop   context.CancelFunc
	Client *appclient.Client
	Ledger *traffic.Ledger
	Queue  appclient.Queue
}

// Start opens the ledger (LEDGER, or ledger), connects as CONNECTION_NAME
// (or name) with appclient.FromEnv's settings, and declares the queue.
// Close releases what it opened.
func Start(log *slog.Logger, name, ledger string) (*Service, error) {
	q, err := Queue()
	if err != nil {
		return nil, err
	}
	cfg, err := appclient.FromEnv()
	if err != nil {
		return nil, err
	}
	cfg.Name, cfg.Logger = EnvOr("CONNECTION_NAME", name), log

	s := &Service{Queue: q}
	if s.Ledger, err = traffic.Open(EnvOr("LEDGER", ledger)); err != nil {
		return nil, err
	}
	s.Ctx, s.Stop = signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	if s.Client, err = appclient.Dial(s.Ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Client.Declare(s.Ctx, q); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection and the ledger, and stops listening for
// signals.
func (s *Service) Close() {
	if s.Client != nil {
		_ = s.Client.Close()
	}
	s.Stop()
	_ = s.Ledger.Close()
}
