//go:build unix

package main

import "syscall"

// flushFilesystems writes the seed's dirty pages to disk, so that the
// kernel's writeback of one way's seed does not run during another's
// timed part.
func flushFilesystems() { syscall.Sync() }
