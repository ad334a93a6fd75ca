package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go runs on.
const clockTicks = 100

// usage is a process's CPU time and bytes it caused to be written to disk.
type usage struct {
	cpuTicks   int64 // utime + stime
	writeBytes int64 // write_bytes in /proc/PID/io
}

// readUsage reads /proc/PID/stat and /proc/PID/io.
func readUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	u.cpuTicks = ut + st
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			u.writeBytes, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return u, err
		}
	}
	return u, fmt.Errorf("/proc/%d/io: no write_bytes", pid)
}

// perMessage describes the usage between before and after for ok messages.
func perMessage(pid int, before, after usage, ok int) string {
	cpu := float64(after.cpuTicks-before.cpuTicks) * 1000 / clockTicks
	disk := after.writeBytes - before.writeBytes
	if ok == 0 {
		return fmt.Sprintf("  pid %d: %.0f ms CPU, %d bytes written, no message accepted\n", pid, cpu, disk)
	}
	return fmt.Sprintf("  pid %d: %.2f ms CPU/msg, %d bytes written/msg (%.0f ms CPU, %d bytes in all)\n",
		pid, cpu/float64(ok), disk/int64(ok), cpu, disk)
}
