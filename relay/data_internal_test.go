package relay

import "testing"

func TestBareLineEnd(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{"", false},
		{"Subject: x\r\n\r\nbody\r\n", false},
		{"no line end at all", false},
		{"Subject: x\r\n\r\nbody", false},
		{"Subject: x\n\r\nbody\r\n", true},
		{"Subject: x\r\n\nbody\r\n", true},
		{"Subject: x\r\n\r\nbody\r", true}, // CR at the very end
		{"Subject: x\r\n\r\nbo\rdy\r\n", true},
		{"Subject: x\r\n\r\nbody\n", true},
		{"\r\r\n", true},
		{"\n", true},
	} {
		if got := bareLineEnd([]byte(tc.body)); got != tc.want {
			t.Errorf("bareLineEnd(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}
