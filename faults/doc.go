// Package faults is warren's fault suite: real faults against the real lab
// while `warren drain` and `warren migrate` run as real processes. Each case
// publishes messages with unique ids, injects its fault (kill -9 of warren
// or of a broker node, SIGINT, a restarted source, memory and disk alarms,
// an HTTP API that stalls or resets behind a TCP proxy, the network to the
// source cut, ghosts of shovels a killed node kept, bad settings), runs
// the same command again, and counts by id:
//
//   - 0 lost;
//   - duplicates within the bound warren reported (the messages the source
//     redelivered during the drain);
//   - the same command run again exits 0 (or, for a refusal, refuses
//     again with nothing changed).
//
// It prints a table: case | lost | duplicates | bound | rerun exit |
// seconds. `go test ./faults/` (and so `make test`) runs a fast subset;
// `make faults` (WARREN_FAULTS=all) runs every case.
package faults
