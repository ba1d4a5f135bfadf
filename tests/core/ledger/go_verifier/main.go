// Command go_verifier checks PolicyLedger's transparency-log artifacts with an independent
// implementation: Go's golang.org/x/mod/sumdb/note (signed notes) and sumdb/tlog (RFC 6962
// inclusion and consistency proofs). The tests in ../test_go_interop.py build and run it.
//
// Usage:
//
//	go_verifier checkpoint VKEY CHECKPOINT_FILE
//	go_verifier inclusion VKEY PROOF_FILE RECORD_FILE
//	go_verifier consistency VKEY OLD_CHECKPOINT_FILE REQUEST_FILE
//
// VKEY is a note verifier key (<name>+<key hash>+<base64 key>). CHECKPOINT_FILE is a signed
// C2SP checkpoint; PROOF_FILE a c2sp.org/tlog-proof@v1; RECORD_FILE the record's exact bytes;
// REQUEST_FILE a tlog-witness add-checkpoint request body ("old N", the consistency proof, a
// blank line, the signed checkpoint). OLD_CHECKPOINT_FILE is the signed checkpoint of the old
// tree, or "-" when the request's old size is 0. Accepted: "ok ..." on stdout, exit 0.
// Refused: the Go error on stderr, exit 1. Bad usage: exit 2.
//
// Build (Debian's golang-go and golang-golang-x-mod-dev, no module download):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build
package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const proofHeader = "c2sp.org/tlog-proof@v1"

// A checkpoint is the text of a C2SP tlog-checkpoint note.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the note's signature with vkey (note.Open), then parses its text.
// tlog.ParseTree expects the Go checksum database's header, not an origin line, so the
// checkpoint body is parsed here.
func openCheckpoint(vkey string, msg []byte) (checkpoint, error) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return checkpoint{}, fmt.Errorf("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint note: %v", err)
	}
	return parseCheckpoint(n.Text)
}

func parseCheckpoint(text string) (checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, errors.New("checkpoint: the text does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, errors.New("checkpoint: expected origin, size and root hash lines")
	}
	for _, line := range lines {
		if line == "" {
			return checkpoint{}, errors.New("checkpoint: an empty line")
		}
	}
	size, err := parseNumber(lines[1])
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint: tree size: %v", err)
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint: root hash: %v", err)
	}
	return checkpoint{origin: lines[0], size: size, root: root}, nil
}

// parseNumber reads a decimal number written without sign or leading zeros.
func parseNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return n, nil
}

func parseHash(s string) (tlog.Hash, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("%q is not base64", s)
	}
	if len(raw) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("%d bytes, not %d", len(raw), tlog.HashSize)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h, nil
}

func parseHashes(lines []string, what string) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, 0, len(lines))
	for _, line := range lines {
		h, err := parseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%s hash: %v", what, err)
		}
		hashes = append(hashes, h)
	}
	return hashes, nil
}

// splitBody cuts a proof or request at its first blank line: the lines before, the note after.
func splitBody(data []byte, what string) ([]string, []byte, error) {
	head, rest, found := strings.Cut(string(data), "\n\n")
	if !found {
		return nil, nil, fmt.Errorf("%s: no blank line before the checkpoint", what)
	}
	return strings.Split(head, "\n"), []byte(rest), nil
}

func cmdCheckpoint(vkey, file string) error {
	msg, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := openCheckpoint(vkey, msg)
	if err != nil {
		return err
	}
	fmt.Printf("ok checkpoint\norigin %s\nsize %d\nroot %s\n", c.origin, c.size, c.root)
	return nil
}

func cmdInclusion(vkey, proofFile, recordFile string) error {
	data, err := os.ReadFile(proofFile)
	if err != nil {
		return err
	}
	record, err := os.ReadFile(recordFile)
	if err != nil {
		return err
	}
	lines, msg, err := splitBody(data, "tlog-proof")
	if err != nil {
		return err
	}
	if lines[0] != proofHeader {
		return fmt.Errorf("tlog-proof: first line %q, not %q", lines[0], proofHeader)
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		if _, err := base64.StdEncoding.DecodeString(lines[0][len("extra "):]); err != nil {
			return errors.New("tlog-proof: extra data is not base64")
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return errors.New("tlog-proof: no index line")
	}
	index, err := parseNumber(lines[0][len("index "):])
	if err != nil {
		return fmt.Errorf("tlog-proof: index: %v", err)
	}
	proof, err := parseHashes(lines[1:], "tlog-proof: inclusion proof")
	if err != nil {
		return err
	}
	c, err := openCheckpoint(vkey, msg)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(proof, c.size, c.root, index, tlog.RecordHash(record)); err != nil {
		return err
	}
	fmt.Printf("ok inclusion %d %d %s\n", index, c.size, c.origin)
	return nil
}

func cmdConsistency(vkey, oldFile, requestFile string) error {
	data, err := os.ReadFile(requestFile)
	if err != nil {
		return err
	}
	lines, msg, err := splitBody(data, "add-checkpoint request")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(lines[0], "old ") {
		return errors.New("add-checkpoint request: no old line")
	}
	oldSize, err := parseNumber(lines[0][len("old "):])
	if err != nil {
		return fmt.Errorf("add-checkpoint request: old size: %v", err)
	}
	proof, err := parseHashes(lines[1:], "add-checkpoint request: consistency proof")
	if err != nil {
		return err
	}
	c, err := openCheckpoint(vkey, msg)
	if err != nil {
		return err
	}
	if oldSize == 0 {
		// tlog.CheckTree takes non-empty trees only; the empty tree is a prefix of any tree.
		if oldFile != "-" {
			return errors.New("add-checkpoint request: old size 0 has no old checkpoint (pass -)")
		}
		if len(proof) != 0 {
			return errors.New("add-checkpoint request: a proof from the empty tree must be empty")
		}
		fmt.Printf("ok consistency 0 %d %s\n", c.size, c.origin)
		return nil
	}
	oldMsg, err := os.ReadFile(oldFile)
	if err != nil {
		return err
	}
	old, err := openCheckpoint(vkey, oldMsg)
	if err != nil {
		return fmt.Errorf("old %v", err)
	}
	if old.origin != c.origin {
		return fmt.Errorf("the old checkpoint is of %q, the new one of %q", old.origin, c.origin)
	}
	if old.size != oldSize {
		return fmt.Errorf("the request says old %d, the old checkpoint has size %d", oldSize, old.size)
	}
	if err := tlog.CheckTree(proof, c.size, c.root, old.size, old.root); err != nil {
		return err
	}
	fmt.Printf("ok consistency %d %d %s\n", old.size, c.size, c.origin)
	return nil
}

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) == 3 && args[0] == "checkpoint":
		err = cmdCheckpoint(args[1], args[2])
	case len(args) == 4 && args[0] == "inclusion":
		err = cmdInclusion(args[1], args[2], args[3])
	case len(args) == 4 && args[0] == "consistency":
		err = cmdConsistency(args[1], args[2], args[3])
	default:
		fmt.Fprintln(os.Stderr, "usage: go_verifier checkpoint VKEY FILE | inclusion VKEY PROOF_FILE RECORD_FILE"+
			" | consistency VKEY OLD_CHECKPOINT_FILE|- REQUEST_FILE")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_verifier:", err)
		os.Exit(1)
	}
}
