package cmd

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tt := range []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"release", "v1.2.3", setting("vcs.revision", "abc1234def5678", "vcs.modified", "false", "vcs.time", "2026-11-25T10:11:12Z"), "v1.2.3 (commit abc1234, 2026-11-25)"},
		{"dirty checkout", "(devel)", setting("vcs.revision", "abc1234def5678", "vcs.modified", "true"), "(devel) (commit abc1234+dirty)"},
		{"dirty with date", "(devel)", setting("vcs.revision", "abc1234def5678", "vcs.modified", "true", "vcs.time", "2026-11-24T23:00:00-02:00"), "(devel) (commit abc1234+dirty)"},
		{"clean checkout", "(devel)", setting("vcs.revision", "abc1234def5678", "vcs.modified", "false", "vcs.time", "2026-11-24T23:00:00-02:00"), "(devel) (commit abc1234, 2026-11-25)"},
		{"go install", "v0.3.0", nil, "v0.3.0"},
		{"no version", "", nil, "(devel)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/relayctl/relayctl", Version: tt.version}, Settings: tt.settings}
			if got := versionOf(info); got != tt.want {
				t.Errorf("versionOf = %q, want %q", got, tt.want)
			}
		})
	}
}
