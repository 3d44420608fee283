package jsonfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/jsonfile"
)

func TestRoundTripAndMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	var got map[string]int
	ok, err := jsonfile.Read(path, &got)
	require.NoError(t, err)
	assert.False(t, ok, "a missing file is not an error")

	require.NoError(t, jsonfile.Write(path, map[string]int{"moved": 3}))
	ok, err = jsonfile.Read(path, &got)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 3, got["moved"])
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(path, []byte("{truncated"), 0o600))
	_, err := jsonfile.Read(path, new(map[string]int))
	require.ErrorContains(t, err, "corrupt")
}
