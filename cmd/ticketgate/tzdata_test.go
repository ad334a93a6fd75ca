package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A slim container image (Debian's -slim, distroless) has no
// /usr/share/zoneinfo; the example's calendar in "Europe/Berlin" must
// still load there, from the zone data built into the binary. The test
// hides the system's files in a mount namespace of its own, which needs
// root.
func TestTimeZonesLoadWithoutTheSystemsZoneFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hiding /usr/share/zoneinfo needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is needed to hide the system's zone files:", err)
	}
	dir := t.TempDir()
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), `timezone = "Europe/Berlin"`) {
		t.Fatal("the example config no longer names a time zone; name one in this test's config")
	}
	cfg := filepath.Join(dir, "ticketgate.toml")
	if err := os.WriteFile(cfg, example, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `mount -t tmpfs none /usr/share/zoneinfo && exec "$0" check -config "$1"`
	cmd := exec.Command(unshare, "--mount", "sh", "-c", script, binary, cfg)
	cmd.Dir = dir
	// GOROOT's lib/time/zoneinfo.zip is the runtime's other source.
	cmd.Env = append(os.Environ(), "GOROOT="+filepath.Join(dir, "no-goroot"), "ZONEINFO=")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "mount:") || strings.Contains(string(out), "unshare:") {
		t.Fatalf("could not hide the zone files: %s", out)
	}
	if strings.Contains(string(out), "time zone") {
		t.Fatalf("the example config was refused without the system's zone files: %s", out)
	}
	// No database yet: check's "no database" (66) shows the config loaded.
	if code := cmd.ProcessState.ExitCode(); code != 66 {
		t.Fatalf("check exited %d, want 66 (no database): %s", code, out)
	}
}
