// goprobe: what a Go program does on an ordinary day -- runtime threads and goroutines, the netpoller on TCP and
// unix sockets, timers, signals, files, os/exec -- run by the kernel tests inside RuntimeDefault containers. It
// prints "go=ok <version>" when everything worked, and the first failure otherwise.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func check(what string, err error) {
	if err != nil {
		fmt.Printf("go=failed %s: %v\n", what, err)
		os.Exit(1)
	}
}

func echo(network, address string) {
	l, err := net.Listen(network, address)
	check("listen "+network, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			buf := make([]byte, 5)
			n, _ := c.Read(buf)
			c.Write(buf[:n])
			c.Close()
		}
	}()
	c, err := net.Dial(network, l.Addr().String())
	check("dial "+network, err)
	_, err = c.Write([]byte("hello"))
	check("write "+network, err)
	buf := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(buf)
	check("read "+network, err)
	c.Close()
}

func main() {
	var wg sync.WaitGroup
	results := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%8 == 0 {
				runtime.LockOSThread() // forces more OS threads (clone with thread flags)
				defer runtime.UnlockOSThread()
			}
			sum := 0
			for j := 0; j < 100000; j++ {
				sum += j % (i + 1)
			}
			time.Sleep(time.Millisecond)
			results <- sum
		}(i)
	}
	wg.Wait()
	close(results)
	runtime.GC()

	echo("tcp", "127.0.0.1:0")
	echo("unix", "/tmp/goprobe.sock")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR1)
	check("kill self", syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	select {
	case <-signals:
	case <-time.After(10 * time.Second):
		check("signal", fmt.Errorf("SIGUSR1 did not arrive"))
	}

	check("write file", os.WriteFile("/tmp/goprobe.txt", []byte("data"), 0o600))
	_, err := os.ReadFile("/tmp/goprobe.txt")
	check("read file", err)
	_, err = os.ReadDir("/")
	check("read dir", err)

	out, err := exec.Command("/bin/echo", "child").Output()
	check("exec", err)
	if string(out) != "child\n" {
		check("exec output", fmt.Errorf("%q", out))
	}

	ticker := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-ticker.C
	}
	ticker.Stop()
	fmt.Printf("go=ok %s\n", runtime.Version())
}
