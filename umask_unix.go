//go:build unix

package main

import "syscall"

// privateFiles makes every file and directory the process creates
// inaccessible to other users, whatever umask it was started with: the
// embedded bucket's objects and their metadata (written by gofakes3 with
// 0666 and 0777), and anything else a library writes. It only ever adds
// bits to the umask. The database does not rely on it (see
// internal/database).
func privateFiles() { syscall.Umask(syscall.Umask(0o077) | 0o077) }
