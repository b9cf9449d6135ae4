package echo_test

import (
	"testing"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
)

func TestAppendLogLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    echo.LogFields
		want string
	}{
		{
			name: "plain",
			f:    echo.LogFields{URI: "/a?b=c", RemoteAddr: "1.2.3.4:5", RequestID: "r1", ConnectionID: "c2", Seq: 3, Method: "GET", Proto: "HTTP/1.1", Host: "h", Backend: "v1"},
			want: "Echoing back request made to /a?b=c to client (1.2.3.4:5) request_id=r1 connection_id=c2 seq=3 method=GET proto=HTTP/1.1 host=h backend=v1\n",
		},
		{
			name: "empty and spaced values are quoted",
			f:    echo.LogFields{URI: "/", RemoteAddr: "r", RequestID: "a b", ConnectionID: "c1", Method: "GET", Proto: "HTTP/2.0", Host: "x=y"},
			want: "Echoing back request made to / to client (r) request_id=\"a b\" connection_id=c1 seq=0 method=GET proto=HTTP/2.0 host=\"x=y\" backend=\"\"\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(echo.AppendLogLine(nil, tc.f)); got != tc.want {
				t.Errorf("AppendLogLine:\ngot  %q\nwant %q", got, tc.want)
			}
		})
	}
}
