package stack_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/warrenmq/warren/stack"
)

// Validate checks a stack's settings file before Pulumi runs, so a bad value
// is refused with its key and the fix, and nothing is created. Init, Preview,
// Up, Destroy and Render all start with it.
func ExampleValidate() {
	dir, _ := os.MkdirTemp("", "warren-example-")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: warren\nruntime: go\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "Pulumi.staging.yaml"), []byte("config:\n  warren:replicas: 2\n"), 0o600)

	_, err := stack.Validate(stack.Options{Stack: "staging", ProjectDir: dir})
	fmt.Println(errors.Is(err, stack.ErrConfig))
	fmt.Println(strings.Contains(err.Error(), `warren:replicas = "2"`), strings.Contains(err.Error(), "allowEvenReplicas"))
	// Output:
	// true
	// true true
}
