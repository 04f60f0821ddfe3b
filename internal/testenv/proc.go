package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a child process started for a test, its output appended to a log
// file, in a process group of its own.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// StartProc starts bin with args, its standard output and error appended
// to the file logPath.
func StartProc(logPath, bin string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	return p, nil
}

// Exited is closed once the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Kill stops the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop asks the process to end (SIGTERM) and kills it after grace.
func (p *Proc) Stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// LogTail is the last k bytes of the process's log.
func (p *Proc) LogTail(k int) string { return FileTail(p.log, k) }

// FileTail is the last k bytes of the file at path, or why it cannot be read.
func FileTail(path string, k int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > k {
		b = b[len(b)-k:]
	}
	return string(b)
}

// ErrExited is returned by WaitHTTP when the process ended while awaited.
var ErrExited = errors.New("exited at start")

// WaitHTTP polls url (each try bounded to 2 s) until it answers with status
// want, the process ends (ErrExited, with the log's tail) or limit passes.
func (p *Proc) WaitHTTP(url string, want int, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %s", ErrExited, p.LogTail(2000))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %d within %s", url, want, limit)
}
