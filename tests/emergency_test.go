package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/securememory/memguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// purgedMarker is printed by handlers, after checking that a live buffer is
// still alive (the purge comes after the handler).
const purgedMarker = "HANDLER RAN"

// liveSecret makes a buffer the child keeps, and a check for the parent's
// benefit that it has been purged by exit time.
func liveSecret() *memguard.Buffer {
	b, err := memguard.NewBufferFromBytes([]byte("live secret"))
	if err != nil {
		panic(err)
	}
	return b
}

// waitForever blocks the child's main goroutine until a signal ends it;
// the parent's test timeout bounds it.
func waitForever() { select {} }

func init() {
	children["safe exit"] = func() {
		_ = liveSecret()
		defer fmt.Println("deferred functions do not run")
		memguard.SafeExit(7)
	}
	children["safe panic"] = func() {
		b := liveSecret()
		defer func() {
			v := recover()
			fmt.Printf("recovered=%v alive=%v\n", v, b.Alive())
			os.Exit(0)
		}()
		memguard.SafePanic("boom-value")
	}
	children["catch signal"] = func() {
		b := liveSecret()
		memguard.CatchSignal(func(sig os.Signal) {
			fmt.Printf("%s sig=%v alive=%v\n", purgedMarker, sig, b.Alive())
		})
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		waitForever()
	}
	children["catch interrupt"] = func() {
		_ = liveSecret()
		memguard.CatchInterrupt()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		waitForever()
	}
	children["handler panics"] = func() {
		_ = liveSecret()
		memguard.CatchSignal(func(os.Signal) { panic("handler bug") }, syscall.SIGUSR1)
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		waitForever()
	}
	children["runtime signals are ignored"] = func() {
		b := liveSecret()
		memguard.CatchSignal(nil) // the defaults
		memguard.CatchSignal(nil, syscall.SIGURG, syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGINT)
		// SIGCHLD from real children, SIGURG from preempting a busy loop,
		// and each runtime signal sent directly.
		for i := 0; i < 3; i++ {
			if err := exec.Command("true").Run(); err != nil {
				panic(err)
			}
		}
		spin := time.Now().Add(200 * time.Millisecond)
		done := make(chan struct{})
		go func() {
			for time.Now().Before(spin) { // CPU-bound: the scheduler preempts it with SIGURG
			}
			close(done)
		}()
		runtime.Gosched()
		<-done
		for _, sig := range []syscall.Signal{syscall.SIGURG, syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGPROF} {
			syscall.Kill(os.Getpid(), sig)
		}
		// A signal is delivered before kill returns to its only thread,
		// but make sure the runtime has handled them: a Notify of our own
		// for SIGWINCH sees its delivery.
		own := make(chan os.Signal, 1)
		signal.Notify(own, syscall.SIGWINCH)
		syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		<-own
		fmt.Println("alive after runtime signals:", b.Alive())
	}
	children["application subscriptions keep working"] = func() {
		own := make(chan os.Signal, 1)
		signal.Notify(own, syscall.SIGUSR2)
		memguard.CatchSignal(nil, syscall.SIGUSR1)
		memguard.CatchSignal(nil) // replacing our own catcher resets nothing of the app's
		syscall.Kill(os.Getpid(), syscall.SIGUSR2)
		fmt.Println("app got", <-own)
	}
	children["no handler without CatchSignal"] = func() {
		_ = liveSecret()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		waitForever()
	}
}

func TestSafeExit(t *testing.T) {
	res := runChild(t, "safe exit")
	assert.Equal(t, 7, res.exitCode)
	assert.NotContains(t, res.stdout, survivedMarker)
	assert.NotContains(t, res.stdout, "deferred functions do not run")
}

func TestSafePanic(t *testing.T) {
	res := runChild(t, "safe panic")
	assert.Equal(t, 0, res.exitCode, res.stderr)
	assert.Contains(t, res.stdout, "recovered=boom-value alive=false", "panicked with the value, after purging")
}

func TestCatchSignal(t *testing.T) {
	res := runChild(t, "catch signal")
	assert.Equal(t, 1, res.exitCode, res.stderr)
	assert.False(t, res.signaled)
	assert.Contains(t, res.stdout, purgedMarker+" sig=terminated alive=true", "the handler runs before the purge")
	assert.NotContains(t, res.stdout, survivedMarker)
}

func TestCatchInterrupt(t *testing.T) {
	res := runChild(t, "catch interrupt")
	assert.Equal(t, 1, res.exitCode, res.stderr)
	assert.False(t, res.signaled)
}

func TestCatchSignalHandlerPanics(t *testing.T) {
	res := runChild(t, "handler panics")
	assert.Equal(t, 1, res.exitCode, "still purges and exits 1: %s", res.stderr)
}

func TestRuntimeSignalsDoNotEndTheProcess(t *testing.T) {
	res := runChild(t, "runtime signals are ignored")
	assert.Equal(t, 0, res.exitCode, res.stderr)
	assert.Contains(t, res.stdout, "alive after runtime signals: true")
	assert.Contains(t, res.stdout, survivedMarker)
}

func TestApplicationSubscriptionsKeepWorking(t *testing.T) {
	res := runChild(t, "application subscriptions keep working")
	assert.Equal(t, 0, res.exitCode, res.stderr)
	assert.Contains(t, res.stdout, "app got user defined signal 2")
}

func TestImportInstallsNoSignalHandler(t *testing.T) {
	res := runChild(t, "no handler without CatchSignal")
	assert.True(t, res.signaled, "the Go runtime's default: die by SIGINT")
	assert.Equal(t, syscall.SIGINT, res.signal)
}

// RLIMIT_CORE: the parent sets a distinctive soft limit that its child
// inherits; the child uses the library and reports what it sees.
func init() {
	children["core limit"] = func() {
		report := func(when string) {
			var rl syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
				panic(err)
			}
			fmt.Printf("%s cur=%d max=%d\n", when, rl.Cur, rl.Max)
		}
		report("start")
		b := liveSecret()
		e, err := b.Seal()
		if err != nil {
			panic(err)
		}
		if _, err := e.Open(); err != nil {
			panic(err)
		}
		memguard.CatchInterrupt()
		memguard.Purge()
		report("used")
		if err := memguard.DisableCoreDumps(); err != nil {
			panic(err)
		}
		report("disabled")
	}
}

func TestCoreLimitUntouchedUntilAsked(t *testing.T) {
	var saved syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_CORE, &saved))
	distinct := syscall.Rlimit{Cur: 12345 * 512, Max: saved.Max}
	if distinct.Max != ^uint64(0) && distinct.Max < distinct.Cur {
		distinct.Cur = distinct.Max
	}
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_CORE, &distinct))
	defer syscall.Setrlimit(syscall.RLIMIT_CORE, &saved)

	res := runChild(t, "core limit")
	require.Equal(t, 0, res.exitCode, res.stderr)
	for _, when := range []string{"start", "used"} {
		assert.Contains(t, res.stdout, fmt.Sprintf("%s cur=%d max=%d", when, distinct.Cur, distinct.Max))
	}
	assert.Contains(t, res.stdout, fmt.Sprintf("disabled cur=0 max=%d", distinct.Max), "hard limit kept")
}

func init() {
	// A WithKey callback that never returns while a Destroy of its Coffer
	// waits for it: SIGTERM must still purge and exit.
	children["signal while a coffer destroy waits"] = func() {
		memguard.CatchSignal(nil)
		c, err := memguard.NewCoffer()
		check(err == nil, "coffer: %v", err)
		go c.WithKey(func([]byte) error {
			go c.Destroy()
			waitForever()
			return nil
		})
		for !c.Destroyed() { // Destroy marks the coffer, then waits
			runtime.Gosched()
		}
		fmt.Println("READY")
		waitForever()
	}
}

// expectLine reads one line from r and checks it is want.
func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, want+"\n", line)
}

// startChild starts the named child with its stdout readable line by line,
// killed when the test ends.
func startChild(t *testing.T, name string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, bufio.NewReader(stdout)
}

// exitsAfter sends sig to the child and requires it to exit with status 1
// within a second.
func exitsAfter(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sent := time.Now()
	require.NoError(t, cmd.Process.Signal(sig))
	select {
	case <-exited:
		t.Logf("exited %v after %v", time.Since(sent), sig)
		assert.Equal(t, 1, cmd.ProcessState.ExitCode())
	case <-time.After(time.Second):
		t.Fatalf("still running one second after %v", sig)
	}
}

func TestSignalWhileCofferDestroyWaits(t *testing.T) {
	cmd, out := startChild(t, "signal while a coffer destroy waits")
	expectLine(t, out, "READY")
	exitsAfter(t, cmd, syscall.SIGTERM)
}

func init() {
	// A handler that never returns: the second signal purges and exits.
	children["stuck handler"] = func() {
		b := liveSecret()
		memguard.CatchSignal(func(os.Signal) {
			fmt.Printf("%s alive=%v\n", purgedMarker, b.Alive())
			waitForever()
		})
		fmt.Println("READY")
		waitForever()
	}
}

func TestSecondSignalEndsAStuckHandler(t *testing.T) {
	cmd, out := startChild(t, "stuck handler")
	expectLine(t, out, "READY")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	expectLine(t, out, purgedMarker+" alive=true")
	exitsAfter(t, cmd, syscall.SIGINT)
}
