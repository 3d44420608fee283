package definitions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxFile bounds a definitions file; brokers with hundreds of thousands of
// objects stay well below it.
const maxFile = 1 << 30

// Load reads a definitions file in the format the management UI, the HTTP
// API and rabbitmqadmin write: a whole-broker export, or a single-vhost
// export (GET /api/definitions/{vhost}), whose queues, exchanges and
// bindings name no vhost.
//
// A single-vhost file needs vhost, the vhost to map it onto; every object
// of the file then belongs to that vhost, which is created when missing.
// For a whole-broker file, a non-empty vhost keeps only that vhost (see
// Only). All errors are ClassUsage and name what is wrong.
func Load(r io.Reader, vhost string) (*Definitions, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, classed(ClassUsage, "read definitions: %w", err)
	}
	if len(data) > maxFile {
		return nil, classed(ClassUsage, "definitions file is larger than %d bytes", maxFile)
	}
	return parse(data, vhost)
}

func parse(data []byte, vhost string) (*Definitions, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, classed(ClassUsage, "definitions file is empty")
	}
	var doc json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, classed(ClassUsage, "definitions file is not valid JSON: %s", describeJSONError(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, classed(ClassUsage, "definitions file has data after its JSON document (at byte %d)", dec.InputOffset())
	}
	d := New()
	if err := d.UnmarshalJSON(doc); err != nil {
		return nil, classed(ClassUsage, "definitions file is malformed: %v", err)
	}
	if d.Len() == 0 && d.Version() == "" {
		return nil, classed(ClassUsage, "this JSON is not a RabbitMQ definitions file: it has none of the sections vhosts, users, queues, exchanges, bindings, policies, parameters, nor a rabbit_version")
	}
	if err := validate(d); err != nil {
		return nil, &Error{Class: ClassUsage, Err: err}
	}
	if single := singleVhost(d); single {
		if vhost == "" {
			return nil, classed(ClassUsage, "this is a single-vhost definitions file (its queues, exchanges and bindings name no vhost): name the vhost to load it into (--vhost)")
		}
		return mapOntoVhost(d, vhost), nil
	}
	if vhost != "" {
		if _, ok := d.Find(KindVhost, vhost); !ok {
			return nil, classed(ClassUsage, "definitions file has no vhost %q (it has %s)", vhost, names(d.Sections[KindVhost]))
		}
		return d.Only(vhost), nil
	}
	return d, nil
}

// required lists the fields without which an object cannot be imported.
var required = map[Kind][]string{
	KindVhost:           {"name"},
	KindUser:            {"name"},
	KindPermission:      {"user", "vhost"},
	KindTopicPermission: {"user", "vhost", "exchange"},
	KindParameter:       {"component", "name", "value"},
	KindGlobalParameter: {"name", "value"},
	KindPolicy:          {"name", "pattern", "definition"},
	KindExchange:        {"name", "type"},
	KindQueue:           {"name"},
	KindBinding:         {"source", "destination", "destination_type"},
}

func validate(d *Definitions) error {
	var errs []error
	for _, k := range Kinds {
		for i, o := range d.Sections[k] {
			for _, f := range required[k] {
				if !o.Has(f) {
					errs = append(errs, fmt.Errorf("%s #%d (%s) has no %q field", section[k], i+1, describe(o), f))
				}
			}
			if k == KindBinding {
				if t := o.Str("destination_type"); t != "queue" && t != "exchange" {
					errs = append(errs, fmt.Errorf("bindings #%d (%s): destination_type %q is neither queue nor exchange", i+1, describe(o), t))
				}
			}
			for _, f := range []string{"arguments", "definition", "value"} {
				if raw, ok := o[f]; ok && f != "value" {
					if _, isMap := decode(raw).(map[string]any); !isMap && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
						errs = append(errs, fmt.Errorf("%s #%d (%s): %q must be an object", section[k], i+1, describe(o), f))
					}
				}
			}
			if len(errs) >= 10 {
				return fmt.Errorf("definitions file is malformed:\n  %w", joinLines(errs))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("definitions file is malformed:\n  %w", joinLines(errs))
	}
	return nil
}

// singleVhost reports whether d is a single-vhost export: objects that
// always carry a vhost in a whole-broker export carry none.
func singleVhost(d *Definitions) bool {
	for _, k := range []Kind{KindQueue, KindExchange, KindBinding} {
		for _, o := range d.Sections[k] {
			if !o.Has("vhost") {
				return true
			}
		}
	}
	return false
}

func mapOntoVhost(d *Definitions, vhost string) *Definitions {
	from := ""
	for _, k := range Kinds {
		if !k.vhostScoped() {
			continue
		}
		for _, o := range d.Sections[k] {
			if v := o.Vhost(); v != "" && from == "" {
				from = v
			}
			o.Set("vhost", vhost)
		}
	}
	if _, ok := d.Find(KindVhost, vhost); !ok {
		v := Object{}
		v.Set("name", vhost)
		d.Sections[KindVhost] = append([]Object{v}, d.Sections[KindVhost]...)
	}
	d.mapped = &vhostMapping{From: from, To: vhost}
	return d
}

// vhostMapping records that a single-vhost file was mapped onto a vhost;
// From is the vhost its parameters and policies named, when they did.
type vhostMapping struct{ From, To string }

func describe(o Object) string {
	for _, f := range []string{"name", "destination", "user", "component"} {
		if s := o.Str(f); s != "" {
			return fmt.Sprintf("%s %q", f, s)
		}
	}
	return "unnamed"
}

func names(objs []Object) string {
	var s []string
	for _, o := range objs {
		s = append(s, fmt.Sprintf("%q", o.Name()))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// describeJSONError says where a JSON document is broken, and whether it
// looks cut short.
func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Sprintf("it ends after %d bytes in the middle of the document (truncated?)", len(data))
	case errors.As(err, &se):
		line, col := position(data, se.Offset)
		return fmt.Sprintf("%v at line %d, column %d", se, line, col)
	case errors.As(err, &te):
		line, col := position(data, te.Offset)
		return fmt.Sprintf("%v at line %d, column %d", te, line, col)
	}
	return err.Error()
}

func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}
