// Package e2e holds warren's end-to-end test on the local Kubernetes lab
// (e2e_test.go): `warren init` and `warren up --stack local` deploy a
// 3-node RabbitMQ cluster into the lab, the lab's source container gets the
// fixture topology and a backlog, `warren migrate` moves it into the pods,
// `warren verify` passes, a deleted pod heals without losing a message, and
// `warren destroy` removes the cluster. The example services (examples/)
// run at 200 msg/s through the client Service while the pod leading their
// queue is deleted, and again while `warren up` with a changed setting
// rolls the StatefulSet; their ledgers must show 0 lost, and up must have
// spread the quorum leaders again afterwards (traffic_test.go,
// rollout_test.go).
//
// It runs only with WARREN_E2E=1, as root, through scripts/e2e.sh or
// `WARREN_E2E=1 go test -count=1 -timeout 60m -v ./e2e/`; without the
// variable it skips and says so. The package has no code of its own: it
// drives the real CLI, built once by TestMain.
package e2e
