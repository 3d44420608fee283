package broker

import (
	"context"
	"encoding/json"
	"strings"
)

// Overview is the part of GET /api/overview that warren reads.
type Overview struct {
	RabbitMQVersion   string `json:"rabbitmq_version"`
	ManagementVersion string `json:"management_version"`
	ErlangVersion     string `json:"erlang_version"`
	ClusterName       string `json:"cluster_name"`
	// Node is the node that answered.
	Node          string         `json:"node"`
	ExchangeTypes []ExchangeType `json:"exchange_types"`
	Listeners     []Listener     `json:"listeners"`
}

// ExchangeType is an exchange type the broker knows.
type ExchangeType struct {
	Name string `json:"name"`
}

// Listener is a node's listening socket.
type Listener struct {
	Node      string `json:"node"`
	Protocol  string `json:"protocol"`
	IPAddress string `json:"ip_address"`
	Port      int    `json:"port"`
}

// Overview describes the broker and the node that answered.
//
// GET /api/overview
func (a *API) Overview(ctx context.Context) (*Overview, error) {
	var ov Overview
	if err := a.Get(ctx, "overview", &ov); err != nil {
		return nil, err
	}
	return &ov, nil
}

// User is the logged-in user as GET /api/whoami reports it.
type User struct {
	Name string `json:"name"`
	Tags Tags   `json:"tags"`
}

// Tags are a user's tags. RabbitMQ 3.10 reports them as a comma-separated
// string, later versions as a list; both decode.
type Tags []string

// UnmarshalJSON accepts "a,b" and ["a","b"].
func (t *Tags) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*t = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = nil
	for _, tag := range strings.Split(s, ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			*t = append(*t, tag)
		}
	}
	return nil
}

// Has reports whether tag is among the tags.
func (t Tags) Has(tag string) bool {
	for _, x := range t {
		if x == tag {
			return true
		}
	}
	return false
}

// Whoami returns the user the client logs in as.
//
// GET /api/whoami
func (a *API) Whoami(ctx context.Context) (*User, error) {
	var u User
	if err := a.Get(ctx, "whoami", &u); err != nil {
		return nil, err
	}
	return &u, nil
}
