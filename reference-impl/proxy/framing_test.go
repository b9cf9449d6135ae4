package proxy

import (
	"bytes"
	"testing"
)

// runFraming feeds in to a framing tracker in pieces of at most step bytes and returns what
// the server would read.
func runFraming(in []byte, step int) []byte {
	c := &framingConn{}
	for len(in) > 0 {
		n := min(step, len(in))
		c.feed(in[:n])
		in = in[n:]
	}
	return append(c.pending, c.line...)
}

func TestFramingSplitIndependent(t *testing.T) {
	t.Parallel()
	stream := []byte("POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	want := append([]byte(nil), stream[:bytes.Index(stream, []byte("POST /4"))]...)
	want = append(want, rejectHead...)
	for _, step := range []int{1, 2, 3, 7, 64, len(stream)} {
		if got := runFraming(stream, step); !bytes.HasPrefix(got, want) {
			t.Errorf("fed %d bytes at a time: got %q; want it to start with %q", step, got, want)
		}
	}
}

// FuzzFraming checks that the framing tracker is transparent: whatever bytes arrive, in
// whatever pieces, the server reads exactly them, except that from a refused head on it reads
// the rejection line instead.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 1)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 5)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 {
			step = 1
		}
		got := runFraming(in, step)
		if i := bytes.Index(got, rejectHead); i >= 0 {
			if !bytes.HasPrefix(in, got[:i]) {
				t.Fatalf("bytes before the rejection differ from the input:\n got %q\nwant prefix of %q", got[:i], in)
			}
			return
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("tracker changed the stream:\n got %q\nwant %q", got, in)
		}
	})
}
