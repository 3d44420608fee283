package loadcheck_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/loadcheck"
)

// Options are checked before anything connects; every problem is listed.
func ExampleOptions_Validate() {
	src, _ := broker.ParseEndpoint("source", "amqp://guest:guest@old-broker:5672/", "http://old-broker:15672", broker.TLSOptions{})
	dst, _ := broker.ParseEndpoint("target", "amqp://admin:secret@rabbitmq.shop.svc:5672/", "http://rabbitmq.shop.svc:15672", broker.TLSOptions{})
	err := loadcheck.Options{Source: src, Target: dst, Vhost: "/", Producers: 2, Consumers: []int{1, 3, 3}, Count: 10000, Rate: -1}.Validate()
	fmt.Println(errors.Is(err, loadcheck.ErrBadOptions))
	fmt.Println(err)
	// Output:
	// true
	// bad load check options: --consumers: 3 given twice: each count is one round
	// --rate -1: want 0 (as fast as confirms allow) to 1000000 msg/s
}

// Run measures the source, then the target, at each consumer count, and
// Chart plots throughput by consumer count.
func ExampleRun() {
	src, err := broker.ParseEndpoint("source", os.Getenv("WARREN_SOURCE_URL"), os.Getenv("WARREN_SOURCE_API"), broker.TLSOptions{})
	if err != nil {
		log.Fatal(err)
	}
	dst, err := broker.ParseEndpoint("target", os.Getenv("WARREN_TARGET_URL"), os.Getenv("WARREN_TARGET_API"), broker.TLSOptions{})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := loadcheck.Run(context.Background(), loadcheck.Options{
		Source: src, Target: dst, Vhost: "/", Producers: 2, Consumers: []int{1, 3, 5},
		Size: 1024, Duration: 10 * time.Second, Progress: loadcheck.LogProgress{},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range rep.Comparison {
		fmt.Printf("%d consumers: target/source %.2f\n", c.Consumers, c.Ratio)
	}
	fmt.Print(loadcheck.Chart(rep, 60, false))
}
