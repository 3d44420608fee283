package definitions_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/warrenmq/warren/definitions"
)

func TestWithoutStatsWait(t *testing.T) {
	ctx := context.Background()
	assert.True(t, definitions.StatsWait(ctx), "waiting is the default")
	assert.False(t, definitions.StatsWait(definitions.WithoutStatsWait(ctx)))
	child, cancel := context.WithCancel(definitions.WithoutStatsWait(ctx))
	defer cancel()
	assert.False(t, definitions.StatsWait(child), "inherited by derived contexts")
}
