// spdyclient drives nacelle's streaming server the way Kubernetes clients do, on the SPDY library Kubernetes
// uses (Debian's golang-github-docker-spdystream-dev, built in GOPATH mode by the tests).
//
//	spdyclient exec -url URL [-protocols P1,P2] [-stdin] [-stdout] [-stderr] [-tty] [-resize 100x30,...] -info FILE
//	  stdin streams from this program's stdin, stdout/stderr to its own; FILE receives key=value lines:
//	  http=<status> (refused upgrades), protocol=<negotiated>, error=<error stream, quoted>, exitcode=<n>,
//	  elapsedms=<from the dial to the exit status, in milliseconds>.
//	spdyclient portforward -url URL -port P [-connections N] [-bytes N] [-request TEXT] [-save FILE] [-no-request-id] [-count-only] -info FILE
//	  each connection sends N pseudo-random bytes (or TEXT, Go-quoted, e.g. "GET / HTTP/1.0\r\n\r\n"), closes its
//	  side, and reads until the server closes; with -save the first connection's received bytes go to FILE;
//	  with -count-only the received bytes are counted, not hashed (receivedsha=-), for throughput measurements;
//	  FILE receives one line per connection: conn=i sent=N sentsha=H received=N receivedsha=H error=<quoted>, then
//	  elapsedms=<from the dial until every connection ended, in milliseconds>.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

// bufferedConn reads first what the HTTP response reader buffered past the 101 answer.
type bufferedConn struct {
	net.Conn
	reader *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.reader.Read(p) }

type info struct {
	mu    sync.Mutex
	lines []string
}

func (i *info) add(format string, args ...interface{}) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.lines = append(i.lines, fmt.Sprintf(format, args...))
}

func (i *info) write(path string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := os.WriteFile(path, []byte(strings.Join(i.lines, "\n")+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "spdyclient: writing info:", err)
		os.Exit(3)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "spdyclient: "+format+"\n", args...)
	os.Exit(3)
}

// upgrade makes the HTTP/1.1 upgrade to SPDY/3.1 offering protocols; nil connection when refused.
func upgrade(rawURL string, protocols []string, out *info) (*spdystream.Connection, string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		fail("bad url: %v", err)
	}
	var conn net.Conn
	if u.Scheme == "https" {
		conn, err = tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		fail("dial: %v", err)
	}
	req, _ := http.NewRequest("POST", rawURL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, p := range protocols {
		req.Header.Add("X-Stream-Protocol-Version", p)
	}
	if err := req.Write(conn); err != nil {
		fail("request: %v", err)
	}
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, req)
	if err != nil {
		fail("response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		out.add("http=%d", resp.StatusCode)
		out.add("body=%s", strconv.Quote(strings.TrimSpace(string(body))))
		conn.Close()
		return nil, ""
	}
	protocol := resp.Header.Get("X-Stream-Protocol-Version")
	out.add("protocol=%s", protocol)
	spdyConn, err := spdystream.NewConnection(&bufferedConn{conn, reader}, false)
	if err != nil {
		fail("spdy: %v", err)
	}
	go spdyConn.Serve(spdystream.NoOpStreamHandler)
	return spdyConn, protocol
}

func open(conn *spdystream.Connection, headers http.Header) *spdystream.Stream {
	stream, err := conn.CreateStream(headers, nil, false)
	if err != nil {
		fail("create stream %v: %v", headers, err)
	}
	if err := stream.WaitTimeout(30 * time.Second); err != nil {
		fail("stream %v not accepted: %v", headers, err)
	}
	return stream
}

func streamType(t string) http.Header {
	h := http.Header{}
	h.Set("streamType", t)
	return h
}

// status is the part of metav1.Status a v4 client reads.
type status struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details *struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func execCommand(args []string) {
	flags := flag.NewFlagSet("exec", flag.ExitOnError)
	rawURL := flags.String("url", "", "stream URL")
	protocols := flags.String("protocols", "v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io", "offered protocols")
	stdin := flags.Bool("stdin", false, "send stdin")
	stdout := flags.Bool("stdout", true, "receive stdout")
	stderr := flags.Bool("stderr", false, "receive stderr")
	tty := flags.Bool("tty", false, "terminal")
	resize := flags.String("resize", "", "terminal sizes to send, COLSxROWS,...")
	infoPath := flags.String("info", "", "info file")
	flags.Parse(args)

	out := &info{}
	defer out.write(*infoPath)
	started := time.Now()
	var offered []string
	if *protocols != "" {
		offered = strings.Split(*protocols, ",")
	}
	conn, protocol := upgrade(*rawURL, offered, out)
	if conn == nil {
		return
	}
	defer conn.Close()

	// The order client-go uses: error first, then stdin, stdout, stderr, resize.
	errorStream := open(conn, streamType("error"))
	errorStream.Close()
	var wg sync.WaitGroup
	if *stdin {
		s := open(conn, streamType("stdin"))
		go func() {
			io.Copy(s, os.Stdin)
			s.Close()
		}()
	}
	if *stdout {
		s := open(conn, streamType("stdout"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(os.Stdout, s)
		}()
	}
	if *stderr && !*tty {
		s := open(conn, streamType("stderr"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(os.Stderr, s)
		}()
	}
	if *tty && (protocol == "v3.channel.k8s.io" || protocol == "v4.channel.k8s.io") {
		s := open(conn, streamType("resize"))
		encoder := json.NewEncoder(s)
		for _, size := range strings.Split(*resize, ",") {
			if size == "" {
				continue
			}
			var w, h uint16
			fmt.Sscanf(size, "%dx%d", &w, &h)
			encoder.Encode(map[string]uint16{"Width": w, "Height": h})
		}
	}

	message, err := io.ReadAll(errorStream)
	if err != nil {
		out.add("readerror=%s", strconv.Quote(err.Error()))
	}
	wg.Wait()
	out.add("error=%s", strconv.Quote(string(message)))
	exitCode := 0
	if protocol == "v4.channel.k8s.io" {
		var st status
		if err := json.Unmarshal(message, &st); err != nil {
			out.add("statuserror=%s", strconv.Quote(err.Error()))
			exitCode = -1
		} else if st.Status != "Success" {
			exitCode = -1
			if st.Reason == "NonZeroExitCode" && st.Details != nil {
				for _, cause := range st.Details.Causes {
					if cause.Reason == "ExitCode" {
						exitCode, _ = strconv.Atoi(cause.Message)
					}
				}
			}
		}
	} else if len(message) > 0 {
		exitCode = -1
	}
	out.add("exitcode=%d", exitCode)
	out.add("elapsedms=%.3f", float64(time.Since(started).Microseconds())/1000)
}

func portForwardCommand(args []string) {
	flags := flag.NewFlagSet("portforward", flag.ExitOnError)
	rawURL := flags.String("url", "", "stream URL")
	port := flags.Int("port", 0, "pod port")
	connections := flags.Int("connections", 1, "connections at once")
	size := flags.Int64("bytes", 1024, "bytes each connection sends")
	noRequestID := flags.Bool("no-request-id", false, "omit requestID headers, as clients before Kubernetes 1.6 did")
	countOnly := flags.Bool("count-only", false, "count the received bytes without hashing them")
	request := flags.String("request", "", "send this (Go-quoted) text instead of random bytes")
	save := flags.String("save", "", "write what the first connection receives to this file")
	infoPath := flags.String("info", "", "info file")
	flags.Parse(args)

	out := &info{}
	defer out.write(*infoPath)
	var text []byte
	if *request != "" {
		unquoted, err := strconv.Unquote(*request)
		if err != nil {
			fail("-request: %v", err)
		}
		text = []byte(unquoted)
		*size = int64(len(text))
	}
	started := time.Now()
	conn, _ := upgrade(*rawURL, []string{"portforward.k8s.io"}, out)
	if conn == nil {
		return
	}
	defer conn.Close()

	var create sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < *connections; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			headers := http.Header{}
			headers.Set("port", strconv.Itoa(*port))
			if !*noRequestID {
				headers.Set("requestID", strconv.Itoa(i))
			}
			// The pair is created back to back, as client-go does (old servers pair streams by id).
			create.Lock()
			headers.Set("streamType", "error")
			errorStream := open(conn, headers.Clone())
			headers.Set("streamType", "data")
			dataStream := open(conn, headers.Clone())
			create.Unlock()
			errorStream.Close()

			sent := sha256.New()
			received := sha256.New()
			var receivedCount int64
			done := make(chan struct{})
			go func() {
				var sink io.Writer = received
				if i == 0 && *save != "" {
					file, err := os.Create(*save)
					if err != nil {
						fail("-save: %v", err)
					}
					defer file.Close()
					sink = io.MultiWriter(received, file)
				}
				if *countOnly {
					buffer := make([]byte, 128*1024)
					for {
						n, err := dataStream.Read(buffer)
						receivedCount += int64(n)
						if err != nil {
							break
						}
					}
				} else {
					receivedCount, _ = io.Copy(sink, dataStream)
				}
				close(done)
			}()
			random := rand.New(rand.NewSource(int64(i) + 1))
			chunk := make([]byte, 32*1024)
			var left = *size
			for left > 0 {
				n := int64(len(chunk))
				if left < n {
					n = left
				}
				if text != nil {
					copy(chunk[:n], text[*size-left:])
				} else {
					random.Read(chunk[:n])
				}
				sent.Write(chunk[:n])
				if _, err := dataStream.Write(chunk[:n]); err != nil {
					break
				}
				left -= n
			}
			dataStream.Close()
			<-done
			message, _ := io.ReadAll(errorStream)
			receivedSha := hex.EncodeToString(received.Sum(nil))
			if *countOnly {
				receivedSha = "-"
			}
			out.add("conn=%d sent=%d sentsha=%s received=%d receivedsha=%s error=%s", i, *size-left, hex.EncodeToString(sent.Sum(nil)),
				receivedCount, receivedSha, strconv.Quote(string(message)))
		}(i)
	}
	wg.Wait()
	out.add("elapsedms=%.3f", float64(time.Since(started).Microseconds())/1000)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: spdyclient exec|portforward ...")
	}
	switch os.Args[1] {
	case "exec":
		execCommand(os.Args[2:])
	case "portforward":
		portForwardCommand(os.Args[2:])
	default:
		fail("unknown command %s", os.Args[1])
	}
}
