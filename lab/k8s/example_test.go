package k8s_test

import (
	"context"
	"fmt"
	"log"

	"github.com/warrenmq/warren/lab/k8s"
)

// Bring the lab up (building what the cache lacks), start the source
// broker container, and point kubectl and warren at them.
func Example() {
	l, err := k8s.Default()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Up(ctx); err != nil {
		log.Fatal(err)
	}
	if err := l.SourceUp(ctx); err != nil {
		log.Fatal(err)
	}
	env := l.Env()
	fmt.Println("KUBECONFIG=" + env["KUBECONFIG"])
	fmt.Println("pods use image", k8s.RabbitMQImage, "with imagePullPolicy: Never")
	fmt.Println("pods reach the source at", env["WARREN_K8S_SOURCE_POD_URL"])
}
