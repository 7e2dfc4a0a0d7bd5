// Command gopeer is a Go client of `msgwire serve`, written as a Go service of the
// seed's would be: the standard library for sockets and HTTP, and
// github.com/vmihailenco/msgpack/v5 for MessagePack, nothing else.
//
// Usage:
//
//	gopeer RPC_ADDR [HTTP_ADDR]
//
// First it calls getUser(1) over the framed-map dialect on RPC_ADDR: one frame
// [u32 BE length][map {"method", "params", "id"}] with a string id; the answer
// {"result", "error", "id"} must echo that id, as a string, and hold Alice
// (docs/PROTOCOL.md section 5).
//
// Then, given HTTP_ADDR, it GETs /api/msgpack/users/1, whose answer must be
// Content-Type application/x-msgpack with a MessagePack map of the user, which it
// decodes into a struct with `msgpack` tags.
//
// It prints one "ok ..." line per check and exits 1 at the first mismatch.
//
// It builds offline against Debian's packages, in GOPATH mode (see
// crates/msgwire/tests/interop_go.rs):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o gopeer .
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// User is the users service's record, as both the RPC answer and the HTTP endpoint
// carry it.
type User struct {
	ID    uint64 `msgpack:"id"`
	Name  string `msgpack:"name"`
	Role  string `msgpack:"role"`
	Email string `msgpack:"email"`
}

// Request is a framed-map request.
type Request struct {
	Method string      `msgpack:"method"`
	Params interface{} `msgpack:"params"`
	ID     string      `msgpack:"id"`
}

// RPCError is a framed-map error: {"code", "message", "data"?}.
type RPCError struct {
	Code    int64       `msgpack:"code"`
	Message string      `msgpack:"message"`
	Data    interface{} `msgpack:"data,omitempty"`
}

// Response is a framed-map response. The id is kept as whatever MessagePack value it
// was, so that a number sent back for a string would be seen.
type Response struct {
	Result msgpack.RawMessage `msgpack:"result"`
	Error  *RPCError          `msgpack:"error"`
	ID     interface{}        `msgpack:"id"`
}

// The largest answer this peer reads, as the server's own default limit.
const maxFrame = 16 << 20

// Nothing here should take long; this only stops a hang.
const patience = 30 * time.Second

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gopeer: "+format+"\n", args...)
	os.Exit(1)
}

func ok(format string, args ...interface{}) {
	fmt.Printf("ok "+format+"\n", args...)
}

// writeFrame writes body as one framed-map frame: its length, then itself.
func writeFrame(w io.Writer, body []byte) error {
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], uint32(len(body)))
	_, err := w.Write(append(head[:], body...))
	return err
}

// readFrame reads one framed-map frame's body.
func readFrame(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("reading a frame's length: %w", err)
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxFrame {
		return nil, fmt.Errorf("a frame of %d bytes, more than %d", n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading a frame of %d bytes: %w", n, err)
	}
	return body, nil
}

func checkAlice(u User, where string) {
	want := User{ID: 1, Name: "Alice", Role: "admin", Email: u.Email}
	if u != want || u.Email == "" {
		fail("%s: got %+v, want Alice (id 1, admin) with an email", where, u)
	}
}

func rpcGetUser(addr string) {
	conn, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		fail("cannot connect to %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(patience)); err != nil {
		fail("%v", err)
	}

	const id = "req-uuid-001"
	body, err := msgpack.Marshal(Request{
		Method: "getUser",
		Params: map[string]interface{}{"id": 1},
		ID:     id,
	})
	if err != nil {
		fail("encoding the request: %v", err)
	}
	if err := writeFrame(conn, body); err != nil {
		fail("sending the request: %v", err)
	}
	answer, err := readFrame(bufio.NewReader(conn))
	if err != nil {
		fail("framed-map answer: %v", err)
	}

	var response Response
	if err := msgpack.Unmarshal(answer, &response); err != nil {
		fail("the answer is not a framed-map response (%v): % x", err, answer)
	}
	if got, isString := response.ID.(string); !isString || got != id {
		fail("the answer's id is %#v, want the string %q back", response.ID, id)
	}
	ok("framed-map getUser: the id %q is echoed as a string", id)
	if response.Error != nil {
		fail("getUser(1) answered error %d: %s", response.Error.Code, response.Error.Message)
	}
	var user User
	if err := msgpack.Unmarshal(response.Result, &user); err != nil {
		fail("the result is not a user (%v): % x", err, []byte(response.Result))
	}
	checkAlice(user, "framed-map getUser(1)")
	ok("framed-map getUser(1) is %s (%s, %s)", user.Name, user.Role, user.Email)
}

func httpGetUser(addr string) {
	client := http.Client{Timeout: patience}
	url := "http://" + addr + "/api/msgpack/users/1"
	request, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		fail("%v", err)
	}
	request.Header.Set("Accept", "application/x-msgpack")
	response, err := client.Do(request)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(io.LimitReader(response.Body, maxFrame))
	if err != nil {
		fail("reading GET %s: %v", url, err)
	}
	if response.StatusCode != http.StatusOK {
		fail("GET %s: status %d: %q", url, response.StatusCode, body)
	}
	if got := response.Header.Get("Content-Type"); got != "application/x-msgpack" {
		fail("GET %s: Content-Type %q, want application/x-msgpack", url, got)
	}
	ok("GET /api/msgpack/users/1: 200, application/x-msgpack")

	var user User
	if err := msgpack.Unmarshal(body, &user); err != nil {
		fail("GET %s: the body is not a user (%v): % x", url, err, body)
	}
	// The map's own keys, so that a missing field is not hidden by a zero value.
	var fields map[string]interface{}
	if err := msgpack.Unmarshal(body, &fields); err != nil {
		fail("GET %s: the body is not a map (%v)", url, err)
	}
	for _, key := range []string{"id", "name", "role", "email"} {
		if _, has := fields[key]; !has {
			fail("GET %s: no %q in %v", url, key, fields)
		}
	}
	checkAlice(user, "GET /api/msgpack/users/1")
	ok("GET /api/msgpack/users/1 decodes to %s (%s, %s)", user.Name, user.Role, user.Email)
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fail("usage: gopeer RPC_ADDR [HTTP_ADDR]")
	}
	rpcGetUser(os.Args[1])
	if len(os.Args) == 3 {
		httpGetUser(os.Args[2])
	}
}
