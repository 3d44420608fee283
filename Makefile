# The two commands a newcomer needs; everything else is `warren --help`.
.PHONY: demo test e2e faults bench build

demo: ## run the main job end to end on the local lab
	./scripts/demo.sh

test: ## install what is missing, bring the lab up, run every test
	./scripts/test.sh

e2e: ## only the Kubernetes end to end: lab k8s, warren up, migrate into pods, verify, destroy
	./scripts/e2e.sh

faults: ## every fault case against the lab (make test runs the fast ones): kills, alarms, a stalled API, ghosts, ...
	./scripts/faults.sh

bench: ## warren's drain against hand-made shovels and a raw copier, its RSS, definitions import against a raw POST; one table (30-45 minutes)
	./scripts/bench.sh

build:
	go build -o bin/warren ./cmd/warren
