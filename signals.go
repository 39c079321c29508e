//go:build cgo

package memguard

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// defaultSignals are the termination requests CatchSignal handles when it is
// given none.
var defaultSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// runtimeSignals are delivered in the normal life of a Go program (SIGURG
// preempts goroutines, SIGCHLD reports children, SIGPIPE broken pipes,
// SIGPROF profiling, SIGWINCH terminal resizes). Ending the process on them
// would be a bug, so CatchSignal never handles them.
var runtimeSignals = map[syscall.Signal]bool{
	syscall.SIGURG: true, syscall.SIGCHLD: true, syscall.SIGPIPE: true,
	syscall.SIGPROF: true, syscall.SIGWINCH: true,
}

var catcher struct {
	mu   sync.Mutex
	ch   chan os.Signal
	stop chan struct{}
}

// CatchSignal makes the process, on the first of signals, call handler (if
// not nil), purge, and exit with status 1; if handler has not returned by
// the time a second of the signals arrives, the purge and the exit go on
// without it. With no signals it catches
// SIGINT, SIGTERM, SIGHUP and SIGQUIT. Runtime signals (SIGURG, SIGCHLD,
// SIGPIPE, SIGPROF, SIGWINCH) are never caught, even if listed, and nor
// is a signal whose type is not syscall.Signal. A later
// call replaces the earlier one. The application's own signal.Notify
// subscriptions keep working: this adds a subscription, it resets nothing.
// A handler that panics still leads to the purge and the exit.
func CatchSignal(handler func(os.Signal), signals ...os.Signal) {
	if len(signals) == 0 {
		signals = defaultSignals
	}
	var wanted []os.Signal
	for _, s := range signals {
		// Only syscall.Signal can be delivered; another os.Signal type
		// might not even be comparable, and a map lookup would panic.
		if sig, ok := s.(syscall.Signal); ok && !runtimeSignals[sig] {
			wanted = append(wanted, sig)
		}
	}

	catcher.mu.Lock()
	defer catcher.mu.Unlock()
	stopCatching()
	if len(wanted) == 0 {
		return
	}
	ch, stop := make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(ch, wanted...)
	catcher.ch, catcher.stop = ch, stop
	go func() {
		select {
		case sig := <-ch:
			if handler != nil {
				go runHandler(handler, sig, ch)
				<-ch // a second signal does not wait for a stuck handler
			}
			SafeExit(1)
		case <-stop:
		}
	}()
}

// runHandler calls handler, then, however it ends (a panic included), hands
// the catcher a signal of its own so that the purge and the exit go on.
func runHandler(handler func(os.Signal), sig os.Signal, done chan<- os.Signal) {
	defer func() {
		_ = recover()
		select {
		case done <- sig:
		default: // a second signal is there already
		}
	}()
	handler(sig)
}

// stopCatching removes the current catcher, if any. The caller holds
// catcher.mu.
func stopCatching() {
	if catcher.ch != nil {
		signal.Stop(catcher.ch)
		close(catcher.stop)
		catcher.ch, catcher.stop = nil, nil
	}
}

// CatchInterrupt is CatchSignal(nil, os.Interrupt): on SIGINT, purge and
// exit with status 1.
func CatchInterrupt() {
	CatchSignal(nil, os.Interrupt)
}
