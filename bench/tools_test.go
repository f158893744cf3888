package main

import "testing"

// Outputs as wrk 4.1 and h2load 1.52 print them (from runs on Debian 12).
const wrkOut = `Running 5s test @ http://127.0.0.1:18081/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.91ms    1.88ms  36.34ms   86.21%
    Req/Sec    11.65k     1.06k   13.89k    72.73%
  116339 requests in 5.01s, 127.31MB read
  Non-2xx or 3xx responses: 7
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  23221.43
Transfer/sec:     25.41MB
`

const h2loadOut = `starting benchmark...
Application protocol: h2c

finished in 5.00s, 20269.40 req/s, 20.32MB/s
requests: 101347 total, 101411 started, 101347 done, 101340 succeeded, 7 failed, 0 errored, 0 timeout
status codes: 101340 2xx, 0 3xx, 3 4xx, 4 5xx
traffic: 101.62MB (106553728) total, 593.82KB (608082) headers (space savings 93.96%), 98.97MB (103779328) data
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	if got.rps != 23221.43 || got.requests != 116339 || got.errors != 10 {
		t.Errorf("parseWrk = %+v, want 23221.43 req/s, 116339 requests, 10 errors", got)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Error("parseWrk accepted output without a rate")
	}
}

func TestParseH2load(t *testing.T) {
	got, err := parseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	if got.rps != 20269.40 || got.requests != 101347 || got.errors != 14 {
		t.Errorf("parseH2load = %+v, want 20269.40 req/s, 101347 requests, 14 errors (7 failed + 7 non-2xx)", got)
	}
	if _, err := parseH2load("No protocol negotiated. Exiting..."); err == nil {
		t.Error("parseH2load accepted output without counts")
	}
}
