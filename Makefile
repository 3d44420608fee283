# The two commands a newcomer needs; everything else is `warren --help`.
.PHONY: demo test build

demo: ## run the main job end to end on the local lab
	./scripts/demo.sh

test: ## install what is missing, bring the lab up, run every test
	./scripts/test.sh

build:
	go build -o bin/warren ./cmd/warren
