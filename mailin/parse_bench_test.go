package mailin

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"ticketgate/mailin/mailintest"
	"time"
)

// message25MB is a message of about 25 MB: a short text and five base64
// attachments of 5 MB encoded each.
func message25MB() []byte {
	var b bytes.Buffer
	b.WriteString("From: big@customer.example\r\nTo: support@example.com\r\nSubject: five big files\r\nMessage-ID: <big25@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere are the files.\r\n")
	data := make([]byte, 5<<20*3/4)
	rand.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	for i := range 5 {
		fmt.Fprintf(&b, "--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"file%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i)
		for j := 0; j < len(enc); j += 76 {
			b.WriteString(enc[j:min(j+76, len(enc))])
			b.WriteString("\r\n")
		}
	}
	b.WriteString("--big--\r\n")
	return b.Bytes()
}

// peakHeap samples the heap in use while f runs and returns the peak above
// the heap in use before.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	f()
	runtime.ReadMemStats(&ms)
	close(done)
	wg.Wait()
	peak = max(peak, ms.HeapInuse)
	return peak - base
}

// BenchmarkParse25MB reports time, allocation and the peak heap (MB and
// multiple of the message size) for a 25 MB message.
func BenchmarkParse25MB(b *testing.B) {
	raw := message25MB()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var peak uint64
	var in *Inbound
	for b.Loop() {
		peak = max(peak, peakHeap(func() {
			var err error
			if in, err = Parse(raw, Limits{}); err != nil {
				b.Fatal(err)
			}
		}))
	}
	if len(in.Attachments) != 5 || len(in.Attachments[0].Content) != 5<<20*3/4 {
		b.Fatalf("attachments: %d", len(in.Attachments))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peak)/float64(len(raw)), "peak/msg")
	b.ReportMetric(float64(len(raw))/(1<<20), "msg-MB")
}

// BenchmarkParseHostile reports time and peak heap for the hostile
// structures of TestHostileStructureStopsParsing.
func BenchmarkParseHostile(b *testing.B) {
	for _, c := range mailintest.HostileCases() {
		b.Run(c.Name, func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					if _, err := Parse(c.Raw, Limits{}); err != nil {
						b.Fatal(err)
					}
				}))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(len(c.Raw))/(1<<20), "msg-MB")
		})
	}
}
