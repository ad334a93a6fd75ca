package main

// The zone data built into the binary (about 450 KB): calendars name IANA
// zones, and slim container images have no /usr/share/zoneinfo. The
// system's files, when present, are still read first.
import _ "time/tzdata"
