//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package embeds3

import (
	"errors"
	"os"
	"syscall"
)

// tryLockExclusive takes f's lock exclusively if no other process holds it.
func tryLockExclusive(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// lockShared holds f's lock shared (turning an exclusive hold into a
// shared one), until f is closed or the process dies.
func lockShared(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
}
